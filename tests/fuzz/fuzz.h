/* What every fuzz target shares: libFuzzer's entry points. */
#ifndef ATTESTFS_FUZZ_H
#define ATTESTFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
