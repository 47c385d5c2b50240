/* The declared list of tests: one list-*.h per area, each a sequence of
 * TEST_ENTRY(name) lines. The runner runs them in this order. */
#include "list-core.h"
#include "list-package.h"
#include "list-tensorio.h"
#include "list-interp.h"
#include "list-loader.h"
#include "list-onnx.h"
#include "list-kernels.h"
#include "list-gguf.h"
#include "list-spice.h"
#include "list-tflite.h"
#include "list-quant.h"
