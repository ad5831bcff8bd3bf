import Graph
import Linalg

/// The `com.microsoft` operators rebirth writes (``OpType/Contrib``), with onnxruntime's
/// semantics for the subset rebirth produces; anything else they can carry is refused by name.
let contribKernels: [(String, any Kernel.Type)] = [
  (OpType.Contrib.attention, Attention.self),
  (OpType.Contrib.gelu, UnaryFloat<ErfGeluMap>.self),
]

/// com.microsoft.Gelu: `x·½·(1 + erf(x/√2))`, the arithmetic of the standard Gelu's erf form.
struct ErfGeluMap: UnaryFloatMap {
  init(_ builder: KernelBuilder) throws {}
  @inline(__always) func apply(_ x: Float) -> Float { GeluMap.erfForm(x) }
}

/// com.microsoft.Attention, bidirectional self-attention without past state (float32).
///
///     qkv = input·weights + bias                         [B,S,N+N+Nv], per row: Q | K | V
///     Q_h, K_h, V_h = the h-th block of head_size columns of Q, K, V
///     out[:, :, h-th block] = softmax(scale·Q_h·K_hᵀ + attention_bias[b, h]) · V_h
///
/// `scale` defaults to 1/√head_size (0 also means the default, as in onnxruntime);
/// `qkv_hidden_sizes` splits the packed weights when V's width differs. `attention_bias`
/// (input 5) is [B or 1, H or 1, S, S]. Refused: `mask_index`, `past`, `past_sequence_length`, the
/// `present` output, `unidirectional`, `do_rotary`, `past_present_share_buffer`.
struct Attention: Kernel {
  let heads: Int
  let scale: Float?
  let hiddenSizes: [Int]?

  init(_ builder: KernelBuilder) throws {
    heads = try builder.int("num_heads")
    guard heads > 0 else { throw builder.unsupported("num_heads", heads) }
    let s = try builder.optionalFloat("scale")
    scale = s == 0 ? nil : s
    hiddenSizes = try builder.optionalInts("qkv_hidden_sizes")
    if let sizes = hiddenSizes {
      guard sizes.count == 3, sizes.allSatisfy({ $0 > 0 && $0 % heads == 0 }), sizes[0] == sizes[1] else {
        throw builder.unsupported("qkv_hidden_sizes", sizes)
      }
    }
    for name in ["unidirectional", "do_rotary", "past_present_share_buffer"] {
      let v = try builder.int(name, default: 0)
      guard v == 0 else { throw builder.unsupported(name, v) }
    }
    builder.ignore("mask_filter_value", "rotary_embedding_dim")  // only read with mask_index / rotary
    for slot in [3, 4, 6] where builder.hasInput(slot) {
      throw builder.error("input \(slot) (\(["mask_index", "past", "past_sequence_length"][slot == 6 ? 2 : slot - 3])) is not supported")
    }
    guard !builder.hasOutput(1) else { throw builder.error("output 'present' is not supported") }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0, .float), w = try context.input(1, .float)
    guard x.rank == 3, w.rank == 2, w.shape[0] == x.shape[2] else {
      throw context.error("input \(x.shape) and weights \(w.shape) are not [B,S,Nin] and [Nin, 3N]")
    }
    let (batch, length, width) = (x.shape[0], x.shape[1], w.shape[1])
    let sizes = hiddenSizes ?? (width % 3 == 0 ? [width / 3, width / 3, width / 3] : [])
    guard sizes.count == 3, sizes.reduce(0, +) == width, sizes.allSatisfy({ $0 % heads == 0 }) else {
      throw context.error("weights \(w.shape) do not split into Q, K, V of num_heads \(heads)")
    }
    let (n, nv) = (sizes[0], sizes[2])
    let (d, dv) = (n / heads, nv / heads)
    if let b = context.optionalInput(2) {
      guard b.dtype == .float, b.shape == [width] else { throw context.error("bias \(b.shape) is not [\(width)]") }
    }
    let bias = try context.optionalInput(5).map { (b) throws(RuntimeError) in try checkedBias(b, batch, length, context) }
    var qkv = NDArray(uninitialized: .float, shape: [batch * length, width])
    var y = NDArray(uninitialized: .float, shape: [batch, length, nv])
    guard batch * length > 0, nv > 0 else { return [y] }
    project(x, w, context.optionalInput(2), into: &qkv, rows: batch * length)
    let alpha = scale ?? 1 / Float(d).squareRoot()
    qkv.withUnsafeBufferPointer(of: Float.self) { qp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        NDArray.withOptionalPointer(bias, of: Float.self) { bp in
          let scores = UnsafeMutablePointer<Float>.allocate(capacity: length * length)
          let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2)
          defer { scores.deallocate(); scratch.deallocate() }
          for b in 0..<batch {
            let rows = qp.baseAddress! + b * length * width
            for h in 0..<heads {
              BLAS.sgemm(
                transposeB: true, m: length, n: length, k: d, alpha: alpha, a: rows + h * d, lda: width,
                b: rows + n + h * d, ldb: width, c: scores, ldc: length)
              if let bp, let shape = bias?.shape {
                let plane = ((shape[0] == 1 ? 0 : b) * shape[1] + (shape[1] == 1 ? 0 : h)) * length * length
                for i in 0..<(length * length) { scores[i] += bp[plane + i] }
              }
              for r in 0..<length {
                SoftmaxNormalization.normalize(
                  scores + r * length, scores + r * length, length: length, inner: 1, scratch: scratch)
              }
              BLAS.sgemm(
                m: length, n: dv, k: length, a: scores, lda: length, b: rows + 2 * n + h * dv, ldb: width,
                c: yp.baseAddress! + b * length * nv + h * dv, ldc: nv)
            }
          }
        }
      }
    }
    return [y]
  }

  /// `attention_bias` must be [B or 1, H or 1, S, S] float32, as onnxruntime requires.
  private func checkedBias(_ b: NDArray, _ batch: Int, _ length: Int, _ context: KernelContext) throws(RuntimeError)
    -> NDArray
  {
    let s = b.shape
    guard b.dtype == .float, s.count == 4, s[0] == batch || s[0] == 1, s[1] == heads || s[1] == 1, s[2] == length,
      s[3] == length
    else { throw context.error("attention_bias \(s) is not [\(batch) or 1, \(heads) or 1, \(length), \(length)]") }
    return b
  }

  /// `qkv = x·w + bias`, rows of `qkv` one per token.
  private func project(_ x: NDArray, _ w: NDArray, _ bias: NDArray?, into qkv: inout NDArray, rows: Int) {
    let (k, width) = (w.shape[0], w.shape[1])
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      w.withUnsafeBufferPointer(of: Float.self) { wp in
        qkv.withUnsafeMutableBufferPointer(of: Float.self) { cp in
          let c = cp.baseAddress!
          if let bias {
            bias.withUnsafeBufferPointer(of: Float.self) { bp in
              for r in 0..<rows { (c + r * width).update(from: bp.baseAddress!, count: width) }
            }
          }
          BLAS.sgemm(
            m: rows, n: width, k: k, a: xp.baseAddress!, lda: max(1, k), b: wp.baseAddress!, ldb: width,
            beta: bias == nil ? 0 : 1, c: c, ldc: width)
        }
      }
    }
  }
}
