/* resnet50 (bottleneck blocks, strided downsample shortcuts) at 96 px: same
 * check as test_model_parity_torch.c, which this file reuses. */
#define PARITY_ARCH "resnet50"
#include "test_model_parity_torch.c"
