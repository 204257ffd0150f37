/* mobilenet_v2 (depthwise convs, relu6, inverted residuals): same check as
 * test_model_parity_torch.c, which this file reuses. */
#define PARITY_ARCH "mobilenet_v2"
#include "test_model_parity_torch.c"
