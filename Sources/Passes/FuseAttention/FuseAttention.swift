import Graph

/// Rewrites a transformer layer's multi-head self-attention, and its erf Gelu, into onnxruntime's
/// contrib operators `com.microsoft.Attention` and `com.microsoft.Gelu` (one node each).
///
///     q = Reshape(x·Wq + bq, [B,S,H,D]) → Transpose [0,2,1,3]              [B,H,S,D]
///     k = Reshape(x·Wk + bk, [B,S,H,D]) → Transpose [0,2,3,1]              [B,H,D,S]
///         (or Transpose [0,2,1,3] then Transpose [0,1,3,2])
///     v = Reshape(x·Wv + bv, [B,S,H,D]) → Transpose [0,2,1,3]              [B,H,S,D]
///     p = Softmax<axis = -1>(MatMul(q, k) · s  [+ m])         s: Div by c (s = 1/c), Mul by c, or none (s = 1)
///     y = Reshape(Transpose(MatMul(p, v), [0,2,1,3]), [B,S,H·D])
///       →  y = com.microsoft.Attention<num_heads = H [, scale = s]>(x, [Wq | Wk | Wv], [bq | bk | bv] [, m′])
///
///     y = x · ½ · (1 + erf(x / √2))        (any order of the products and sums; x·(1/√2) too)
///       →  y = com.microsoft.Gelu(x)       (the standard Gelu from opset 20)
///
/// Attention computes, per batch b and head h, `softmax(scale·Q_h·K_hᵀ + m′)·V_h` with
/// `[Q | K | V] = x·W + bias` and Q_h the h-th block of D columns of Q, and writes head h into the
/// same columns of its output: exactly the pattern's arithmetic (the reshapes split and merge the
/// last axis, the transposes only move heads). `scale` is written only when s is not 1/√D (within
/// 1e-6 relative). A missing bias is written as zeros. The additive mask m (BERT exports compute
/// it from `attention_mask`, shape [B,1,1,S]) becomes `attention_bias` m′ = Expand(m, [B,1,S,S])
/// when its shape is known to be [B or 1, 1, 1 or S, S].
///
/// Exact. Declines: an intermediate value with another use or that is a graph output (the
/// projections, heads, scores, probabilities, context), weights or biases that are not constant
/// float32 initializers (a graph input is not), shapes not inferred (x must be [B,S,Nin] with Nin
/// known, the heads [B,S,H,D] with H and D known), Q, K and V with different head splits or
/// inputs, a scale that is zero, not finite or not a scalar, a Softmax on another axis, and a mask
/// of another shape. Gelu declines constants that are not ½, 1 and √2 (or 1/√2) within 1e-6
/// relative (1.4142 is not √2) or not scalars, and intermediates with other uses.
///
/// Needs contrib operators: standard ONNX tools (and `.tmf`) do not know them, onnxruntime runs
/// them; the pass is on by default only for `.onnx` with `--allow-contrib-ops` (``OutputTarget/onnxContribOps``).
/// The model imports `com.microsoft` version 1 when the pass writes one.
public struct FuseAttention: Pass {
  public static let name = "fuse-attention"
  public static let summary =
    "Fuse multi-head self-attention into com.microsoft.Attention and the erf Gelu into com.microsoft.Gelu (contrib operators)"
  public static let isExact = true
  public static let isDefault = false
  public static let preset: Preset? = nil
  /// It writes operators of the `com.microsoft` domain, which only onnxruntime runs.
  public static let requiresContribOps = true
  public static let targetNote: String? =
    "on for .onnx with --allow-contrib-ops: it writes onnxruntime's com.microsoft.Attention and Gelu; off for "
    + "standard .onnx, and for .tmf, which has no op code for them"

  public static func isDefault(for target: OutputTarget) -> Bool { target == .onnxContribOps }

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    rewriter.applyGreedily([SelfAttention(opset: rewriter.opset), ErfGelu(opset: rewriter.opset)])
  }
}

extension Rewriter {
  /// Imports `domain` at `version` unless the model imports it already.
  mutating func importDomain(_ domain: String, version: Int64) {
    editModel { model in
      if !model.opsetImports.contains(where: { $0.domain == domain }) {
        model.opsetImports.append(OpsetImport(domain: domain, version: version))
      }
    }
  }
}

extension Graph {
  /// The default-domain `op` node producing `value`, when `value` is its only output and has no
  /// other use (nor is a graph output).
  func soleProducer(of value: ValueID?, _ op: String) -> Node? {
    guard let value, hasSingleUse(value), let node = producer(of: value), node.opType == op,
      OpType.isDefaultDomain(node.domain), node.outputs.count == 1
    else { return nil }
    return node
  }

  /// The value of a constant float32 scalar (one element, rank at most `maxRank`).
  func scalarConstant(_ value: ValueID?, maxRank: Int) -> Double? {
    guard let t = constant(value), t.dtype == .float, t.elementCount == 1, t.shape.count <= maxRank,
      let v = t.doubles?.first, v.isFinite
    else { return nil }
    return v
  }
}

/// Whether `value` is `target` within 1e-6 relative: float32 roundings of the constant pass, other
/// constants (1.4142 for √2) do not.
func isClose(_ value: Double?, to target: Double) -> Bool {
  guard let value else { return false }
  return abs(value - target) <= 1e-6 * abs(target)
}
