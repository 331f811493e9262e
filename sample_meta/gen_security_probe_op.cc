// A custom op for metainspect's security corpus: native code a model needs a shared library for.
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/platform/env.h"

using namespace tensorflow;

REGISTER_OP("MetainspectNativeProbe")
    .Input("marker: string")
    .Output("out: string")
    .SetIsStateful();

class MetainspectNativeProbeOp : public OpKernel {
 public:
  explicit MetainspectNativeProbeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    const tstring& path = ctx->input(0).scalar<tstring>()();
    OP_REQUIRES_OK(ctx, WriteStringToFile(Env::Default(), path, "native code ran\n"));
    ctx->set_output(0, ctx->input(0));
  }
};

REGISTER_KERNEL_BUILDER(Name("MetainspectNativeProbe").Device(DEVICE_CPU), MetainspectNativeProbeOp);
