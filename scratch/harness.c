#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "context.h"
#include "jit.h"
#include "resources.h"
const char *snapmla_kernel_kind_name(snapmla_kernel_kind k){return k==0?"mla_decode":k==1?"mla_combine":"kv_append";}
const char *snapmla_cache_format_name(snapmla_cache_format f){(void)f;return "bf16";}
const char *snapmla_arch_name(snapmla_arch a){return snapmla_arch_nvrtc_name(a);}
size_t snapmla_cache_page_bytes(const snapmla_variant *v){return (size_t)v->page_size*(v->latent_dim+v->rope_dim)*2;}
static float bf(unsigned short x){unsigned u=(unsigned)x<<16;float f;memcpy(&f,&u,4);return f;}
static unsigned short tobf(float f){unsigned u;memcpy(&u,&f,4);u+=0x7fff+((u>>16)&1);return u>>16;}
static unsigned long long rng=88172645463325252ull;
static double rnd(void){rng^=rng<<13;rng^=rng>>7;rng^=rng<<17;return (double)(rng>>11)/9007199254740992.0*2-1;}
#define CK(x) do{snapmla_error e; if((x)!=SNAPMLA_OK){printf("FAIL %s: %s\n",#x,e.message);exit(1);}}while(0)
int main(int argc,char**argv){
  int H=argc>1?atoi(argv[1]):16, QL=argc>2?atoi(argv[2]):1, splits=argc>3?atoi(argv[3]):0;
  snapmla_variant v; memset(&v,0,sizeof v); snprintf(v.name,sizeof v.name,"h%dq%d",H,QL);
  v.kernel=0; v.latent_dim=512; v.rope_dim=64; v.q_heads=H; v.q_len=QL; v.causal=1; v.page_size=64;
  v.kv_tile=64; v.q_tile=16; v.stages=2; v.warps=8; v.threads=256; v.max_splits=16; v.split_min_tokens=256; v.arch=SNAPMLA_ARCH_SM90A;
  v.smem_bytes=snapmla_variant_smem_bytes(&v);
  snapmla_error e; char*src; size_t n; unsigned char*cubin; size_t sz;
  if(snapmla_emit(&v,&src,&n,&e)){printf("%s\n",e.message);return 1;}
  if(snapmla_jit_compile(src,"h.cu",v.arch,&cubin,&sz,&e)){printf("%s\n",e.message);return 1;}
  static snapmla_context ctx; if(snapmla_driver_open(&ctx.driver,&e)){printf("%s\n",e.message);return 0;}
  ctx.driver_state=1; const snapmla_driver*d=&ctx.driver;
  if(snapmla_driver_ensure_context(d,&e)){printf("%s\n",e.message);return 1;}
  snapmla_kernel k; memset(&k,0,sizeof k); k.variant=v; k.owner=&ctx; k.sm_count=132;
  if(SNAPMLA_CU(d,cuModuleLoadData(&k.module,cubin),&e)){printf("%s\n",e.message);return 1;}
  SNAPMLA_CU(d,cuModuleGetFunction(&k.main_function,k.module,"snapmla_decode_split"),&e);
  SNAPMLA_CU(d,cuModuleGetFunction(&k.combine_function,k.module,"snapmla_combine"),&e);
  if(SNAPMLA_CU(d,cuFuncSetAttribute(k.main_function,CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,v.smem_bytes),&e)){printf("%s\n",e.message);return 1;}
  int B=5; int seq[5]={0,1,63,1000,4100}; int W=576, L=512, P=64; int maxp=(4100+63)/64; int pages=B*maxp+3;
  size_t rows=(size_t)B*QL*H;
  unsigned short*q=malloc(rows*W*2),*cache=malloc((size_t)pages*P*W*2),*out=malloc(rows*L*2); float*lse=malloc(rows*4);
  int*table=malloc(B*maxp*4);
  for(size_t i=0;i<rows*W;i++)q[i]=tobf(rnd());
  for(size_t i=0;i<(size_t)pages*P*W;i++)cache[i]=0x7fc0; /* NaN poison */
  int perm[4096]; for(int i=0;i<pages;i++)perm[i]=i; for(int i=pages-1;i>0;i--){int j=(int)((rnd()+1)/2*i);int t=perm[i];perm[i]=perm[j];perm[j]=t;}
  int used=0; for(int b=0;b<B;b++)for(int p=0;p<maxp;p++){ if(p*P<seq[b]) table[b*maxp+p]=perm[used++]; else table[b*maxp+p]=(p&1)?-1:123456789; }
  for(int b=0;b<B;b++)for(int t=0;t<seq[b];t++){unsigned short*tok=cache+((size_t)table[b*maxp+t/P]*P+t%P)*W; for(int c=0;c<W;c++)tok[c]=tobf(rnd());}
  float scale=1.0f/sqrtf(576.f)*3;
  CUdeviceptr dq,dc,dt,ds,dout,dlse,dws; size_t ws=snapmla_decode_workspace_bytes(&k,B);
  d->cuMemAlloc(&dq,rows*W*2); d->cuMemAlloc(&dc,(size_t)pages*P*W*2); d->cuMemAlloc(&dt,B*maxp*4); d->cuMemAlloc(&ds,B*4); d->cuMemAlloc(&dout,rows*L*2); d->cuMemAlloc(&dlse,rows*4); d->cuMemAlloc(&dws,ws);
  d->cuMemcpyHtoD(dq,q,rows*W*2); d->cuMemcpyHtoD(dc,cache,(size_t)pages*P*W*2); d->cuMemcpyHtoD(dt,table,B*maxp*4); d->cuMemcpyHtoD(ds,seq,B*4);
  d->cuMemsetD8(dout,0xff,rows*L*2); d->cuMemsetD8(dlse,0xff,rows*4); d->cuMemsetD8(dws,0xff,ws);
  snapmla_decode_args a={.batch=B,.q=(void*)dq,.kv_cache=(void*)dc,.num_pages=pages,.page_stride=0,.block_table=(void*)dt,.block_table_stride=maxp,.cache_seqlens=(void*)ds,.softmax_scale=scale,.out=(void*)dout,.lse=(void*)dlse,.workspace=(void*)dws,.workspace_bytes=ws,.num_splits=splits};
  if(snapmla_decode(&k,&a,NULL,&e)){printf("decode: %s\n",e.message);return 1;}
  if(SNAPMLA_CU(d,cuCtxSynchronize(),&e)){printf("%s\n",e.message);return 1;}
  d->cuMemcpyDtoH(out,dout,rows*L*2); d->cuMemcpyDtoH(lse,dlse,rows*4);
  double err2=0,ref2=0,lmax=0; long bad=0;
  for(int b=0;b<B;b++)for(int i=0;i<QL;i++)for(int h=0;h<H;h++){
    size_t r=((size_t)b*QL+i)*H+h; int lim=seq[b]-QL+i+1; if(lim>seq[b])lim=seq[b]; if(lim<0)lim=0;
    double m=-INFINITY; double *s=malloc(sizeof(double)*(lim+1));
    for(int t=0;t<lim;t++){unsigned short*tok=cache+((size_t)table[b*maxp+t/P]*P+t%P)*W; double dot=0; for(int c=0;c<W;c++)dot+=(double)bf(q[r*W+c])*bf(tok[c]); s[t]=dot*scale; if(s[t]>m)m=s[t];}
    double l=0; for(int t=0;t<lim;t++){s[t]=exp(s[t]-m); l+=s[t];}
    for(int c=0;c<L;c++){double o=0; for(int t=0;t<lim;t++){unsigned short*tok=cache+((size_t)table[b*maxp+t/P]*P+t%P)*W; o+=s[t]*bf(tok[c]);} o=lim?o/l:0; double g=bf(out[r*L+c]); if(isnan(g))bad++; err2+=(g-o)*(g-o); ref2+=o*o;}
    double rl=lim?m+log(l):INFINITY; if(isinf(rl)){ if(!(isinf(lse[r])&&lse[r]>0))bad++;} else {double dl=fabs(lse[r]-rl); if(dl>lmax)lmax=dl; if(isnan(lse[r]))bad++;}
    free(s);}
  printf("H=%d QL=%d splits=%d: rel_l2 %.3e lse_max_abs %.3e bad %ld -> %s\n",H,QL,splits,sqrt(err2/ref2),lmax,bad,(sqrt(err2/ref2)<1e-2&&lmax<1e-3&&bad==0)?"PASS":"FAIL");
  return 0;}
