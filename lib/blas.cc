#include "lib/blas.h"

#include <cblas.h>

namespace ntc {
const char* blas_kernel_name() { return openblas_get_corename(); }
}  // namespace ntc
