// The autodiff core: graph recording, accumulation, no-grad mode, graph release, memory reuse.
#include <gtest/gtest.h>

#include "kernels/kernels.h"
#include "lib/alloc.h"
#include "lib/common.h"
#include "lib/ops/ops.h"
#include "lib/rng.h"
#include "lib/threads.h"

namespace ntc {
namespace {

TEST(Autodiff, SharedSubexpressionAndAccumulation) {
  // f(x) = sum(x·x + x) -> df/dx = 2x + 1; a second backward adds the same again.
  Tensor x = Tensor::from({3}, {1, -2, 0.5f}).set_requires_grad(true);
  auto f = [&] { return sum(add(mul(x, x), x)); };
  f().backward();
  EXPECT_EQ(x.grad_tensor().to_vector(), (std::vector<float>{3, -3, 2}));
  f().backward();
  EXPECT_EQ(x.grad_tensor().to_vector(), (std::vector<float>{6, -6, 4}));
  x.zero_grad();
  EXPECT_FALSE(x.has_grad());
}

TEST(Autodiff, NoGradRecordsNothing) {
  Tensor x = Tensor::param({4});
  {
    NoGrad ng;
    Tensor y = relu(add_scalar(x, 1.f));
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.impl()->node, nullptr);
  }
  Tensor y = relu(add_scalar(x, 1.f));
  EXPECT_TRUE(y.requires_grad());
  EXPECT_NE(y.impl()->node, nullptr);
}

TEST(Autodiff, ParamsAndActivationsAreDistinct) {
  Tensor w = Tensor::param({2});
  Tensor a = Tensor::from({2}, {1, 2});
  EXPECT_TRUE(w.is_param());
  EXPECT_TRUE(w.requires_grad());
  EXPECT_FALSE(a.is_param());
  EXPECT_FALSE(a.requires_grad());
  Tensor y = mul(w, a);
  EXPECT_FALSE(y.is_param());
  EXPECT_TRUE(y.requires_grad());
  sum(y).backward();
  EXPECT_EQ(w.grad_tensor().to_vector(), (std::vector<float>{1, 2}));
  EXPECT_FALSE(a.has_grad());  // constants receive no gradient
}

TEST(Autodiff, GraphReleasedAfterBackward) {
  Tensor x = Tensor::param({2});
  Tensor h = exp(x);
  Tensor y = sum(h);
  y.backward();
  EXPECT_EQ(h.impl()->node, nullptr);
  EXPECT_FALSE(h.has_grad());  // intermediate gradients are freed
  EXPECT_TRUE(x.has_grad());
}

TEST(Autodiff, BackwardNeedsScalarThatRequiresGrad) {
  Tensor x = Tensor::param({2});
  EXPECT_THROW(exp(x).backward(), Error);
  Tensor c = Tensor::from({1}, {1});
  EXPECT_THROW(c.backward(), Error);
}

TEST(Autodiff, ReshapeIsAViewWithGradient) {
  Tensor x = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}).set_requires_grad(true);
  Tensor v = x.reshape({3, -1});
  EXPECT_EQ(v.shape(), (Shape{3, 2}));
  EXPECT_EQ(v.data(), x.data());  // shares storage
  sum(mul(v, v)).backward();
  EXPECT_EQ(x.grad_tensor().to_vector(), (std::vector<float>{2, 4, 6, 8, 10, 12}));
  EXPECT_THROW(x.reshape({4, 2}), Error);
}

TEST(Autodiff, DeepChainDoesNotOverflowTheStack) {
  Tensor x = Tensor::from({1}, {0.5f}).set_requires_grad(true);
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = add_scalar(y, 0.f);
  sum(y).backward();
  EXPECT_EQ(x.grad_tensor().item(), 1.f);
}

TEST(Rng, SeededAndThreadCountIndependent) {
  std::vector<float> a(200000), b(200000), c(200000);
  Rng r1(5), r2(5), r3(6);
  set_num_threads(1);
  r1.fill_normal(a.data(), a.size(), 0, 1);
  set_num_threads(2);
  r2.fill_normal(b.data(), b.size(), 0, 1);
  r3.fill_normal(c.data(), c.size(), 0, 1);
  set_num_threads(0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double m = 0, v = 0;
  for (float x : a) m += x;
  m /= double(a.size());
  for (float x : a) v += (x - m) * (x - m);
  v /= double(a.size());
  EXPECT_NEAR(m, 0, 0.01);
  EXPECT_NEAR(v, 1, 0.01);
  EXPECT_EQ(r1.counter(), 200000u);
}

TEST(Memory, BuffersAreReused) {
  mem_release_cache();
  MemStats s0 = mem_stats();
  for (int i = 0; i < 10; ++i) Buffer b(1 << 20);
  MemStats s1 = mem_stats();
  EXPECT_EQ(s1.fresh_allocs - s0.fresh_allocs, 1u);
  EXPECT_GE(s1.reused_allocs - s0.reused_allocs, 9u);
}

// Blocks of 64 KiB up to 2 MiB are carved from huge-page slabs (lib/alloc.cc), 16 MiB of them at
// most: a slab goes back to the system only when none of its blocks is live, so live blocks spread
// over many slabs could otherwise pin any amount of cached memory. After mem_release_cache at most
// the slabs' 16 MiB stays cached, however the live blocks are spread.
TEST(Memory, MidSizeBlocksComeFromBoundedSlabs) {
  mem_release_cache();
  std::vector<Buffer> v;
  for (int i = 0; i < 120; ++i) {
    v.emplace_back(size_t(64) << 10);  // 256 KiB each: 30 MiB in all
    v.back().data()[0] = float(i);
    v.back().data()[(64 << 10) - 1] = float(i);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.back().data()) % 64, 0u);
  }
  for (int i = 0; i < 120; ++i) ASSERT_EQ(v[size_t(i)].data()[(64 << 10) - 1], float(i));  // no overlap
  std::vector<Buffer> keep;
  for (int i = 0; i < 120; i += 10) keep.push_back(v[size_t(i)]);  // live blocks all along
  v.clear();
  EXPECT_GE(mem_stats().cached, size_t(100) << 18);
  mem_release_cache();
  EXPECT_LE(mem_stats().cached, size_t(16) << 20);
  Buffer again(size_t(64) << 10);  // a cached block of the class, or a fresh one: either works
  again.data()[0] = 1.f;
  keep.clear();
  mem_release_cache();
  EXPECT_LE(mem_stats().cached, size_t(16) << 20);
}

// conv -> GDN -> convT, 1000 forward/backward iterations: resident memory must not grow.
// The memory budget (lib/alloc.h): live tensor bytes may not pass it; cached blocks are given
// back to make room; a refused allocation is an ntc::Error and leaves the accounting intact.
TEST(Memory, BudgetBoundsLiveTensorsOnly) {
  mem_release_cache();
  const size_t base = mem_stats().in_use;
  set_memory_budget(base + (16u << 20));
  {
    Buffer a(3u << 20);  // 12 MiB
    EXPECT_THROW(Buffer(2u << 20), Error);  // +8 MiB: over
    EXPECT_EQ(mem_stats().in_use, base + (12u << 20));
    Buffer b(512u << 10);  // +2 MiB: fits
  }
  EXPECT_GE(mem_stats().cached, 14u << 20);
  {
    Buffer c(3u << 20);  // reuses a's block
    Buffer d(1u << 20);  // a fresh 4 MiB class: b's cached block goes back to the system first
    EXPECT_LE(mem_stats().in_use + mem_stats().cached, base + (16u << 20));
    EXPECT_THROW(Buffer(512u << 10), Error);  // a cached class too: the budget bounds live bytes
  }
  set_memory_budget(0);
  Buffer big(5u << 20);  // no budget: anything the system gives
  EXPECT_EQ(memory_budget(), 0u);
}

TEST(Memory, NoGrowthOverTrainingIterations) {
  Rng rng(3);
  Tensor x = Tensor::uniform({2, 3, 16, 16}, -1, 1, rng);
  Tensor w1 = Tensor::param({8, 3, 5, 5}), b1 = Tensor::param({8});
  Tensor beta = Tensor::param({8}), gamma = Tensor::param({8, 8});
  Tensor w2 = Tensor::param({8, 3, 5, 5}), b2 = Tensor::param({3});
  rng.fill_uniform(w1.data(), size_t(w1.numel()), -0.1f, 0.1f);
  rng.fill_uniform(w2.data(), size_t(w2.numel()), -0.1f, 0.1f);
  beta.data()[0] = 1;
  for (int i = 0; i < 8; ++i) beta.data()[i] = 1.f, gamma.data()[i * 9] = 0.1f;
  auto step = [&] {
    Tensor h = conv2d_same(x, w1, b1, 2);
    h = gdn1(h, nonneg_reparam(beta, 1e-6f), nonneg_reparam(gamma, 0.f), false);
    Tensor y = conv_transpose2d_same(h, w2, b2, 2);
    Tensor loss = mean(square(sub(y, x)));
    loss.backward();
    for (Tensor* p : {&w1, &b1, &beta, &gamma, &w2, &b2}) {
      k::axpy(-1e-3f, p->grad(), p->data(), size_t(p->numel()));
      p->zero_grad();
    }
    return loss.item();
  };
  for (int i = 0; i < 50; ++i) step();  // warm the caches
  const size_t rss0 = rss_bytes();
  const size_t fresh0 = mem_stats().fresh_allocs;
  float first = step(), last = 0;
  for (int i = 0; i < 1000; ++i) last = step();
  const size_t rss1 = rss_bytes();
  EXPECT_LT(last, first);                             // it does train
  EXPECT_LE(mem_stats().fresh_allocs - fresh0, 8u)  // buffers come from the cache
      << "fresh allocations: " << fresh0 << " before, " << mem_stats().fresh_allocs << " after";
#ifndef __SANITIZE_ADDRESS__  // ASan's quarantine holds freed blocks on purpose: RSS says nothing
  EXPECT_LT(double(rss1), double(rss0) + 2e6) << "RSS grew from " << rss0 << " to " << rss1;
#endif
}

}  // namespace
}  // namespace ntc
