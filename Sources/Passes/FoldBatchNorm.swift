import Graph

/// Folds inference-mode BatchNormalization into the layer before it (or the Conv after it).
///
///     c = Conv(x, W, b); y = BatchNormalization(c, γ, β, μ, σ²)
///       →  y = Conv(x, W·s, (b − μ)·s + β)              s = γ / √(σ² + ε), per output channel
///
/// The same for ConvTranspose (its weight is [C_in, C_out/g, k…]: the output channel is
/// `group(c_in)·(C_out/g) + axis 1`), for Gemm (`B' = α·B·s` on the columns of B' whatever transB,
/// `C' = (β·C − μ)·s + β_bn` with C materialized per column, then α = β = 1) and for MatMul with a
/// constant 2-D weight on a rank-2 input (`B' = B·s` per column, the Add of a constant bias after it
/// folded too, or a new Add of `β_bn − μ·s` when there was none). A missing Conv bias is added.
///
/// Before a Conv whose pads are all 0 (METHODS §1.7.1), with `c = group(m)·(C/g) + c'`:
///
///     y = Conv(BatchNormalization(x, …), W, b)  →  y = Conv(x, W'[m,c',…] = W[m,c',…]·s[c],
///                                                          b'[m] = b[m] + Σ_{c',k} W[m,c',k]·t[c])
///
/// With padding the original pads the normalized value with 0, the folded conv would pad it with
/// t: border outputs would differ, so padded convs are left alone.
///
/// A BatchNormalization with nothing to fold into becomes `Mul(x, s) → Add(·, t)` with constants
/// shaped [C, 1, …] (needs the input's rank and opset 7+), with option `lone`. It is off by
/// default: it adds a node, and onnxruntime runs one BatchNormalization as fast as a Mul and an
/// Add, so only a target with a fused affine op gains from it.
///
/// All arithmetic is done in Double and stored as float32. Declines: training mode (opset 14+
/// `training_mode` = 1, or a mean/variance output that is read), `spatial` = 0 (opset < 9), any of
/// γ β μ σ² not a float32 constant of C elements, a layer output with another use or that is a
/// graph output, a weight that is not a constant (a graph input, a node output), a non-float input.
public struct FoldBatchNorm: Pass {
  public static let name = "fold-batchnorm"
  public static let summary = "Fold inference BatchNormalization into the Conv, ConvTranspose, Gemm or MatMul next to it"
  public static let isExact = true
  public static let isDefault = true
  public static let options = [
    PassOption("lone", .bool, default: "false", "rewrite a BatchNormalization with nothing to fold into as Mul and Add")
  ]

  let lone: Bool

  public init(options: PassOptions) { lone = options.bool("lone") }

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    var patterns: [any RewritePattern] = [LayerBatchNorm(opset: rewriter.opset), BatchNormConv(opset: rewriter.opset)]
    if lone && rewriter.opset >= 7 { patterns.append(LoneBatchNorm(opset: rewriter.opset)) }
    rewriter.applyGreedily(patterns)
  }
}

/// An inference BatchNormalization as a per-channel affine map.
struct InferenceBatchNorm {
  let node: Node
  let input: ValueID
  let output: ValueID
  let affine: ChannelAffine
  var channels: Int { affine.scale.count }

  init?(_ node: Node, in graph: Graph, opset: Int) {
    guard node.inputs.count == 5, let input = node.input(0), let output = node.output(0),
      node.outputs.dropFirst().allSatisfy({ $0 == nil || graph.uses(of: $0!).isEmpty }),
      graph.int("training_mode", of: node, default: 0) == 0,
      opset >= 9 || graph.int("spatial", of: node, default: 1) != 0,
      graph.elementType(of: input) == .float
    else { return nil }
    var parameters: [[Double]] = []
    for slot in 1...4 {
      guard let t = graph.constant(node.input(slot)), t.dtype == .float, t.shape.count == 1, let v = t.doubles
      else { return nil }
      parameters.append(v)
    }
    let c = parameters[0].count
    guard c > 0, parameters.allSatisfy({ $0.count == c }), parameters[3].allSatisfy({ $0 >= 0 }) else { return nil }
    let epsilon = Double(node.attribute("epsilon")?.float ?? 1e-5)
    guard let affine = ChannelAffine.batchNorm(
      scale: parameters[0], bias: parameters[1], mean: parameters[2], variance: parameters[3], epsilon: epsilon)
    else { return nil }
    self.node = node
    self.input = input
    self.output = output
    self.affine = affine
  }

  /// A base name for what the rewrite makes: the node's name, or its output's.
  func baseName(in graph: Graph) -> String { node.name.isEmpty ? graph[output].name : node.name }
}

/// BatchNormalization after Conv, ConvTranspose, Gemm or MatMul (+ Add); see ``FoldBatchNorm``.
struct LayerBatchNorm: RewritePattern {
  static let name = "layer-batchnorm"
  static let rootOpTypes: Set<String>? = [OpType.batchNormalization]
  let opset: Int

  struct Match {
    let batchNorm: InferenceBatchNorm
    let layer: ChannelLayer
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let bn = InferenceBatchNorm(node, in: graph, opset: opset),
      let layer = ChannelLayer.producing(bn.input, in: graph),
      layer.channelAxis == 1, layer.channels == bn.channels,
      opset >= 7 || !needsNewAdd(layer)
    else { return nil }
    return Match(batchNorm: bn, layer: layer)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let bnLabel = rewriter.graph.label(m.batchNorm.node), layerLabel = rewriter.graph.label(m.layer.node)
    let result = try m.layer.fold(m.batchNorm.affine, named: m.batchNorm.baseName(in: rewriter.graph), &rewriter)
    rewriter.replaceAllUses(of: m.batchNorm.output, with: result)
    rewriter.erase(m.batchNorm.node.id)
    return "\(bnLabel) folded into \(layerLabel)"
  }

  private func needsNewAdd(_ layer: ChannelLayer) -> Bool {
    if case .matMul = layer.kind { return layer.bias == nil }
    return false
  }
}

/// BatchNormalization before a Conv with all pads 0; see ``FoldBatchNorm``.
struct BatchNormConv: RewritePattern {
  static let name = "batchnorm-conv"
  static let rootOpTypes: Set<String>? = [OpType.batchNormalization]
  let opset: Int

  struct Match {
    let batchNorm: InferenceBatchNorm
    let conv: Node
    let weight: Tensor
    let bias: Tensor?
    let group: Int
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let bn = InferenceBatchNorm(node, in: graph, opset: opset),
      let conv = graph.soleConsumer(of: bn.output), conv.opType == OpType.conv, OpType.isDefaultDomain(conv.domain),
      conv.input(0) == bn.output, conv.input(1) != bn.output, conv.input(2) != bn.output,
      let weight = graph.constant(conv.input(1)), weight.dtype == .float, weight.shape.count >= 3,
      (conv.attribute("pads")?.ints ?? []).allSatisfy({ $0 == 0 }),
      ["NOTSET", "VALID"].contains(conv.attribute("auto_pad")?.string ?? "NOTSET")
    else { return nil }
    let group = Int(graph.int("group", of: conv, default: 1))
    guard group >= 1, weight.shape[0] % group == 0, weight.shape[1] * group == bn.channels else { return nil }
    let bias = graph.constant(conv.input(2))
    if conv.input(2) != nil {
      guard let bias, bias.dtype == .float, bias.shape == [weight.shape[0]] else { return nil }
    }
    return Match(batchNorm: bn, conv: conv, weight: weight, bias: bias, group: group)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let graph = rewriter.graph
    let bnLabel = graph.label(m.batchNorm.node), convLabel = graph.label(m.conv)
    let (weight, bias) = folded(m)
    let weightValue = rewriter.addInitializer(foldedName(graph[m.conv.input(1)!].name), weight)
    let biasBase = m.conv.input(2).map { foldedName(graph[$0].name) } ?? m.batchNorm.baseName(in: graph) + "_bias"
    let biasValue = rewriter.addInitializer(biasBase, bias)
    rewriter.setInput(0, of: m.conv.id, to: m.batchNorm.input)
    rewriter.setInput(1, of: m.conv.id, to: weightValue)
    rewriter.setInput(2, of: m.conv.id, to: biasValue)
    rewriter.erase(m.batchNorm.node.id)
    return "\(bnLabel) folded into the following \(convLabel)"
  }

  /// `W'[m,c',k] = W[m,c',k]·s[c]`, `b'[m] = b[m] + Σ W[m,c',k]·t[c]`, with c = group(m)·(C/g) + c'.
  private func folded(_ m: Match) -> (Tensor, Tensor) {
    let w = m.weight.doubles ?? [], shape = m.weight.shape
    let outputs = shape[0], inputsPerGroup = shape[1], kernel = shape.dropFirst(2).reduce(1, *)
    let outputsPerGroup = outputs / m.group
    var bias = m.bias?.doubles ?? Array(repeating: 0, count: outputs)
    var out = [Float](repeating: 0, count: w.count)
    let s = m.batchNorm.affine.scale, t = m.batchNorm.affine.shift
    for f in w.indices {
      let o = f / (inputsPerGroup * kernel), cLocal = (f / kernel) % inputsPerGroup
      let c = (o / outputsPerGroup) * inputsPerGroup + cLocal
      out[f] = Float(w[f] * s[c])
      bias[o] += w[f] * t[c]
    }
    return (Tensor(floats: out, shape: shape), Tensor(floats: bias.map { Float($0) }, shape: [outputs]))
  }
}

/// A BatchNormalization nothing folds into, as Mul and Add by [C, 1, …] constants; see
/// ``FoldBatchNorm``.
struct LoneBatchNorm: RewritePattern {
  static let name = "batchnorm-to-mul-add"
  static let rootOpTypes: Set<String>? = [OpType.batchNormalization]
  let opset: Int

  struct Match {
    let batchNorm: InferenceBatchNorm
    let rank: Int
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let bn = InferenceBatchNorm(node, in: graph, opset: opset),
      let rank = graph.shape(of: bn.input)?.count, rank >= 2
    else { return nil }
    if let channels = graph.shape(of: bn.input)?[1].value, channels != bn.channels { return nil }
    return Match(batchNorm: bn, rank: rank)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let base = m.batchNorm.baseName(in: rewriter.graph), label = rewriter.graph.label(m.batchNorm.node)
    let shape = [m.batchNorm.channels] + Array(repeating: 1, count: m.rank - 2)
    let scale = rewriter.addInitializer(base + "_scale", Tensor(floats: m.batchNorm.affine.scale.map { Float($0) }, shape: shape))
    let shift = rewriter.addInitializer(base + "_shift", Tensor(floats: m.batchNorm.affine.shift.map { Float($0) }, shape: shape))
    let mul = try rewriter.addNode(OpType.mul, name: base + "_mul", inputs: [m.batchNorm.input, scale])
    let add = try rewriter.addNode(OpType.add, name: base + "_add", inputs: [rewriter.graph[mul].output(0)!, shift])
    rewriter.replaceAllUses(of: m.batchNorm.output, with: rewriter.graph[add].output(0)!)
    rewriter.erase(m.batchNorm.node.id)
    return "\(label) rewritten as Mul and Add by per-channel constants"
  }
}
