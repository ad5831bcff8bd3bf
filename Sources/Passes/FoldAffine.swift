import Graph

/// Folds a constant Mul, Div, Add or Sub after a Conv, ConvTranspose, Gemm or MatMul (constant
/// weight) into the layer's weight and bias, when the constant is per output channel
/// (`[C,1,1]`, `[1,C,1,1]` for convs; `[C]`, `[1,C]` on the last axis for Gemm and MatMul) or a scalar.
///
///     c = Conv(x, W, b); y = Mul(c, a)   →  y = Conv(x, W·a, b·a)
///     c = Conv(x, W, b); y = Div(c, a)   →  y = Conv(x, W/a, b/a)          (no element of a is 0)
///     c = Conv(x, W, b); y = Add(c, t)   →  y = Conv(x, W, b + t)
///     c = Conv(x, W, b); y = Sub(c, t)   →  y = Conv(x, W, b − t)
///     c = Conv(x, W, b); y = Sub(t, c)   →  y = Conv(x, −W, t − b)
///
/// Each is the per-channel affine map `y = a·c + t` of METHODS §1.7.1: `W' = W·a` per output
/// channel, `b' = b·a + t`. Chains (BatchNorm exported as Mul then Add) fold one op at a time. For
/// MatMul the bias is the constant of the Add after it: an Add or Sub directly after a MatMul
/// without one is already in its simplest form and stays. Gemm folds α into B and β into C.
///
/// Declines: a constant that varies along another axis (the fold would change the result), one
/// with more axes than the output, a division by a constant with a 0 or a constant divided by
/// the layer, non-float32 constants, a layer output with another use or that is a graph output, a
/// weight that is not a constant, opsets before 7 (whose Mul and Add broadcast differently).
public struct FoldAffine: Pass {
  public static let name = "fold-affine"
  public static let summary = "Fold constant per-channel Mul, Div, Add and Sub into the Conv, ConvTranspose, Gemm or MatMul before them"
  public static let isExact = true
  public static let isDefault = true

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    guard rewriter.opset >= 7 else { return }
    rewriter.inferShapes()
    rewriter.applyGreedily([LayerAffine()])
  }
}

/// A constant per-channel Mul, Div, Add or Sub after a layer; see ``FoldAffine``.
struct LayerAffine: RewritePattern {
  static let name = "layer-affine"
  static let rootOpTypes: Set<String>? = [OpType.mul, OpType.div, OpType.add, OpType.sub]

  struct Match {
    let node: Node
    let output: ValueID
    let layer: ChannelLayer
    let affine: ChannelAffine
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard node.inputs.count == 2, node.outputs.count == 1, let output = node.output(0) else { return nil }
    for slot in 0..<2 {
      guard let y = node.input(slot), graph.constant(y) == nil, let layer = ChannelLayer.producing(y, in: graph),
        let values = graph.perChannelConstant(
          node.input(1 - slot), channels: layer.channels, axis: layer.channelAxis, rank: layer.outputRank),
        let affine = affine(node.opType, values, layerFirst: slot == 0)
      else { continue }
      // An Add after a bias-less MatMul is its bias already.
      if case .matMul = layer.kind, layer.bias == nil, affine.hasShift { return nil }
      return Match(node: node, output: output, layer: layer, affine: affine)
    }
    return nil
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let label = rewriter.graph.label(m.node), layerLabel = rewriter.graph.label(m.layer.node)
    let base = m.node.name.isEmpty ? rewriter.graph[m.output].name : m.node.name
    let result = try m.layer.fold(m.affine, named: base, &rewriter)
    rewriter.replaceAllUses(of: m.output, with: result)
    rewriter.erase(m.node.id)
    return "\(label) folded into \(layerLabel)"
  }

  /// The op as `y = a·x + t` per channel, x being the layer's output.
  private func affine(_ op: String, _ c: [Double], layerFirst: Bool) -> ChannelAffine? {
    let ones = Array(repeating: 1.0, count: c.count), zeros = Array(repeating: 0.0, count: c.count)
    switch op {
    case OpType.mul: return ChannelAffine(scale: c, shift: zeros)
    case OpType.add: return ChannelAffine(scale: ones, shift: c)
    case OpType.sub:
      return layerFirst ? ChannelAffine(scale: ones, shift: c.map { -$0 }) : ChannelAffine(scale: ones.map { -$0 }, shift: c)
    case OpType.div:
      guard layerFirst, c.allSatisfy({ $0 != 0 }) else { return nil }
      return ChannelAffine(scale: c.map { 1 / $0 }, shift: zeros)
    default: return nil
    }
  }
}
