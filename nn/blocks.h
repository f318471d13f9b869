// blocks — the ELIC residual bottleneck block and Cheng 2020's simplified attention block
// (SPEC §1.2), composed from lib/ops. Convolutions are TF "SAME", bias on.
//
//   ResidualBlock(c):   y = x + c3( relu( c2( relu( c1(x) ) ) ) )
//                       c1: 1x1 c→c/2, c2: 3x3 c/2→c/2, c3: 1x1 c/2→c. No activation after the sum.
//   SimpleAttention(c): y = x + trunk(x) ⊙ sigmoid( gate( branch(x) ) )
//                       trunk, branch: 3 ResidualBlocks each; gate: 1x1 conv c→c with bias.
#pragma once
#include <array>

#include "lib/ops/ops.h"

namespace ntc::nn {

struct ConvParams {
  Tensor weight;  // [Cout, Cin, k, k]
  Tensor bias;    // [Cout]
};

struct ResidualBlockParams {
  ConvParams c1, c2, c3;
};

struct SimpleAttentionParams {
  std::array<ResidualBlockParams, 3> trunk, branch;
  ConvParams gate;
};

Tensor residual_block(const Tensor& x, const ResidualBlockParams& p);
Tensor simple_attention(const Tensor& x, const SimpleAttentionParams& p);

}  // namespace ntc::nn
