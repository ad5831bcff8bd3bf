// Single-precision matrix products for the runtime's convolutions, written with x86 intrinsics
// and chosen at run time by what the processor supports (AVX-512 or AVX2+FMA). Elsewhere (aarch64,
// Apple) `rb_gemm_isa()` is 0 and the other functions are never called: the runtime uses BLAS.
//
// The product is C[m×n] = A[m×k]·B[k×n] (+ bias per row, then an optional ReLU or clip), all
// row-major. A (a convolution's weights) is packed once by `rb_gemm_pack_a`; B (the im2col matrix
// or the input itself) is packed per call, block by block, into the caller's workspace.
#ifndef REBIRTH_CKERNELS_H
#define REBIRTH_CKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction sets of the micro-kernels.
enum {
  RB_GEMM_NONE = 0,    // no kernel: use BLAS
  RB_GEMM_AVX2 = 1,    // AVX2 + FMA: 6×16 tiles
  RB_GEMM_AVX512 = 2,  // AVX-512 F/BW/DQ/VL: 12×32 tiles
};

/// Activations applied to the finished tile.
enum {
  RB_ACT_NONE = 0,
  RB_ACT_RELU = 1,  // y > 0 ? y : 0
  RB_ACT_CLIP = 2,  // min(max(y, lo), hi), NaN kept
};

/// The best instruction set this processor (and its operating system) supports.
int rb_gemm_isa(void);

/// Rows per micro-tile (the packing unit of A) and columns per micro-tile (of B) for `isa`.
int rb_gemm_mr(int isa);
int rb_gemm_nr(int isa);

/// Floats `rb_gemm_pack_a` writes for an m×k A: m rounded up to whole row panels, times k.
size_t rb_gemm_packed_a_count(int isa, ptrdiff_t m, ptrdiff_t k);

/// Floats of workspace one `rb_gemm_run` call needs (one packed block of B plus an edge tile).
size_t rb_gemm_workspace_count(int isa);

/// Packs A (m×k, row stride lda) into panels of `rb_gemm_mr(isa)` rows, each stored k-major
/// (the panel's column k is mr consecutive floats), rows past m zero.
void rb_gemm_pack_a(int isa, ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, float *packed);

/// Rows [row_begin, row_end) and columns [col_begin, col_end) of
///     C = act(A·B + bias)
/// for A packed by `rb_gemm_pack_a` with the same isa, m and k; B k×n with row stride ldb; C with
/// row stride ldc (not read); bias (m floats) may be NULL. row_begin must be a multiple of
/// `rb_gemm_mr(isa)`. `workspace` holds `rb_gemm_workspace_count(isa)` floats, 64-byte aligned.
void rb_gemm_run(
  int isa, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *packed_a, const float *b, ptrdiff_t ldb, float *c,
  ptrdiff_t ldc, const float *bias, int activation, float lo, float hi, ptrdiff_t row_begin, ptrdiff_t row_end,
  ptrdiff_t col_begin, ptrdiff_t col_end, float *workspace);

/// A 2-D convolution's input (one image, one group's `channels` planes of in_h×in_w, NCHW) seen as
/// its im2col matrix: row (c·k_h + i)·k_w + j, column oh·out_w + ow holds
/// x[c, oh·stride_h − pad_h + i·dilation_h, ow·stride_w − pad_w + j·dilation_w], 0 in the padding.
/// A 1-D convolution is one of height 1.
typedef struct {
  const float *x;
  ptrdiff_t channels, in_h, in_w, out_h, out_w, k_h, k_w;
  ptrdiff_t stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
} rb_conv2d_input;

/// `rb_gemm_run` with B the im2col matrix of `input` (k = channels·k_h·k_w, n = out_h·out_w),
/// packed straight from the input: the im2col matrix is never written out.
void rb_gemm_run_conv2d(
  int isa, ptrdiff_t m, ptrdiff_t k, const float *packed_a, const rb_conv2d_input *input, float *c, ptrdiff_t ldc,
  const float *bias, int activation, float lo, float hi, ptrdiff_t row_begin, ptrdiff_t row_end,
  ptrdiff_t col_begin, ptrdiff_t col_end, float *workspace);

#ifdef __cplusplus
}
#endif

#endif
