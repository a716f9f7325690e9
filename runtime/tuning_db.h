/* Internal view of a tuning database, shared by the table (tuning_db.c), its
 * YAML form (tuning_db_yaml.c) and the dispatcher (dispatch.c). */
#ifndef SNAPMLA_RUNTIME_TUNING_DB_H
#define SNAPMLA_RUNTIME_TUNING_DB_H

#include "snapmla.h"

struct snapmla_tuning_db {
    char *source;                   /* path or name, for messages */
    snapmla_tuning_entry *entries;  /* sorted by key, each key once */
    size_t count;
    int log_dispatch;               /* SNAPMLA_LOG had "dispatch" when loaded */
};

/* Orders entries by key: arch, device, family, rows, batch, context. */
int snapmla_tuning_key_compare(const snapmla_tuning_entry *a, const snapmla_tuning_entry *b);

/* Where an entry stood in its file. */
typedef struct snapmla_tuning_mark {
    int line, column;
} snapmla_tuning_mark;

/* Takes ownership of entries (malloc'ed, count of them) and of source: sorts
 * them and refuses a repeated key (naming both by their position in the
 * input, as "entries[i]", and by marks[i] when marks is not NULL). */
snapmla_status snapmla_tuning_db_adopt(char *source, snapmla_tuning_entry *entries, size_t count,
                                       const snapmla_tuning_mark *marks, snapmla_tuning_db **out,
                                       snapmla_error *err);

/* "5-8", "257+", "0-512": the label of a bucket in files and messages. */
void snapmla_tuning_batch_label(int bucket, char *out, size_t size);
void snapmla_tuning_context_label(int bucket, char *out, size_t size);
/* The key in words, for messages: "sm_90a 'NVIDIA H100' l512r64... rows 16
 * batch 5-8 context 2049-4096". */
void snapmla_tuning_key_text(const snapmla_tuning_entry *e, char *out, size_t size);

/* Whether $SNAPMLA_LOG asks for dispatch logs (read by the loader, once). */
int snapmla_tuning_env_logs_dispatch(void);

#endif
