#include <stdio.h>
#include <stdlib.h>
#include "fidelity.h"
int main(int argc,char**argv){ snapmla_fidelity_config c={512,64,16,atoi(argv[1]),2,30,8,4,42}; snapmla_fidelity_row rows[SNAPMLA_RECIPE_COUNT]; snapmla_error e;
 if(snapmla_fidelity_run(&c,rows,&e)){printf("%s\n",e.message);return 1;}
 for(int k=0;k<SNAPMLA_RECIPE_COUNT;k++)printf("%-50s %.3e %.3e %.6f\n",snapmla_recipe_name(k),rows[k].rel_l2,rows[k].max_abs,rows[k].cosine); return 0;}
