/* The append kernel's contract on the host: each token stored into its slot
 * by the format's own rule (cache_layout.c), padding skipped, slots out of
 * range counted and left alone. The GPU append check compares bytes with it. */
#include "reference.h"

int64_t snapmla_ref_append(const snapmla_layout *layout, unsigned char *cache,
                           int64_t num_pages, int64_t page_stride, const uint16_t *latent,
                           int64_t latent_stride, const uint16_t *rope, int64_t rope_stride,
                           const int64_t *slots, int64_t n)
{
    int64_t P = layout->page_size, slots_total = num_pages * P, bad = 0;
    if (latent_stride == 0)
        latent_stride = layout->latent_dim;
    if (rope_stride == 0)
        rope_stride = layout->rope_dim;
    for (int64_t i = 0; i < n; ++i) {
        int64_t slot = slots[i];
        if (slot < 0)
            continue;
        if (slot >= slots_total) {
            bad++;
            continue;
        }
        snapmla_layout_store(layout, cache + (size_t)(slot / P) * (size_t)page_stride,
                             (int)(slot % P), latent + (size_t)(i * latent_stride),
                             rope + (size_t)(i * rope_stride));
    }
    return bad;
}
