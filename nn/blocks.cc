#include "nn/blocks.h"

namespace ntc::nn {
namespace {
Tensor conv(const Tensor& x, const ConvParams& p) { return conv2d_same(x, p.weight, p.bias, 1); }
}  // namespace

Tensor residual_block(const Tensor& x, const ResidualBlockParams& p) {
  Tensor h = relu(conv(x, p.c1));
  h = relu(conv(h, p.c2));
  return add(x, conv(h, p.c3));
}

Tensor simple_attention(const Tensor& x, const SimpleAttentionParams& p) {
  Tensor t = x, b = x;
  for (const auto& rb : p.trunk) t = residual_block(t, rb);
  for (const auto& rb : p.branch) b = residual_block(b, rb);
  return add(x, mul(t, sigmoid(conv(b, p.gate))));
}

}  // namespace ntc::nn
