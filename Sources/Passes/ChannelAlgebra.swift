import Graph

// Shared by fold-batchnorm and fold-affine: a layer linear per output channel, and how a per-channel
// affine map after it is folded into its weight and bias (METHODS §1.7.1).

/// A per-channel affine map `y[…, j, …] = scale[j]·x[…, j, …] + shift[j]`.
struct ChannelAffine {
  var scale: [Double]
  var shift: [Double]

  /// `a` after `self`: `a(self(x))`.
  func then(_ a: ChannelAffine) -> ChannelAffine {
    ChannelAffine(
      scale: zip(scale, a.scale).map { $0 * $1 },
      shift: zip(shift, zip(a.scale, a.shift)).map { $0 * $1.0 + $1.1 })
  }

  var hasShift: Bool { shift.contains { $0 != 0 } }

  /// Inference BatchNormalization: `s = γ/√(σ² + ε)`, `t = β − μ·s`.
  static func batchNorm(scale γ: [Double], bias β: [Double], mean μ: [Double], variance σ2: [Double], epsilon ε: Double)
    -> ChannelAffine?
  {
    var s: [Double] = [], t: [Double] = []
    for j in γ.indices {
      let denominator = (σ2[j] + ε).squareRoot()
      guard denominator > 0, denominator.isFinite else { return nil }
      s.append(γ[j] / denominator)
      t.append(β[j] - μ[j] * s[j])
    }
    return ChannelAffine(scale: s, shift: t)
  }
}

/// A node whose output is linear per output channel, with constant weights:
///
///     Conv            W [M, C/g, k…]        channel m = axis 0 of W, output axis 1
///     ConvTranspose   W [C, M/g, k…]        channel = group(c)·(M/g) + axis 1 of W, output axis 1
///     Gemm            B [K, N] or [N, K]    channel = column of B' (transB), output axis 1
///     MatMul (+ Add)  B [K, N]              channel = column of B, last output axis
///
/// The bias (Conv's B, Gemm's C times beta, the constant of an Add after MatMul) has its channel on
/// its last axis, or broadcasts there.
struct ChannelLayer {
  enum Kind {
    case conv
    case convTranspose(group: Int)
    case gemm(transB: Bool, alpha: Double, beta: Double)
    case matMul
  }

  let node: Node
  let kind: Kind
  let weight: Tensor
  /// Output channels.
  let channels: Int
  /// The current bias, and the node and input slot that hold it (nil: no bias yet).
  let bias: Tensor?
  let biasHolder: (node: NodeID, slot: Int)?
  /// What the layer's consumer reads: the node's output, or the output of MatMul's bias Add.
  let output: ValueID
  /// The rank of `output`, when known.
  let outputRank: Int?

  /// The axis of `output` that holds the channels.
  var channelAxis: Int? {
    switch kind {
    case .conv, .convTranspose, .gemm: return 1
    case .matMul: return outputRank.map { $0 - 1 }
    }
  }

  /// The layer that computes `value`, when `value` is read only once (by the op to fold) and the
  /// layer's weight and bias are float32 constants.
  static func producing(_ value: ValueID, in graph: Graph) -> ChannelLayer? {
    guard graph.hasSingleUse(value), let node = graph.producer(of: value), OpType.isDefaultDomain(node.domain),
      node.output(0) == value
    else { return nil }
    if node.opType == OpType.add { return matMulWithBias(node, in: graph) }
    guard let weight = graph.constant(node.input(1)), weight.dtype == .float else { return nil }
    let bias = graph.constant(node.input(2))
    if node.input(2) != nil && bias?.dtype != .float { return nil }
    let group = Int(graph.int("group", of: node, default: 1))
    let kind: Kind, channels: Int, rank: Int?
    switch node.opType {
    case OpType.conv:
      guard weight.shape.count >= 3, group >= 1, weight.shape[0] % group == 0 else { return nil }
      (kind, channels, rank) = (.conv, weight.shape[0], weight.shape.count)
    case OpType.convTranspose:
      guard weight.shape.count >= 3, group >= 1, weight.shape[0] % group == 0 else { return nil }
      (kind, channels, rank) = (.convTranspose(group: group), weight.shape[1] * group, weight.shape.count)
    case OpType.gemm:
      guard weight.shape.count == 2 else { return nil }
      let transB = graph.int("transB", of: node, default: 0) != 0
      let alpha = Double(node.attribute("alpha")?.float ?? 1), beta = Double(node.attribute("beta")?.float ?? 1)
      (kind, channels, rank) = (.gemm(transB: transB, alpha: alpha, beta: beta), transB ? weight.shape[0] : weight.shape[1], 2)
    case OpType.matMul:
      guard weight.shape.count == 2, node.inputs.count == 2 else { return nil }
      (kind, channels, rank) = (.matMul, weight.shape[1], graph.shape(of: value)?.count)
    default:
      return nil
    }
    guard channels > 0 else { return nil }
    if let bias, !biasFits(bias, channels: channels, rank: rank) { return nil }
    return ChannelLayer(
      node: node, kind: kind, weight: weight, channels: channels, bias: bias,
      biasHolder: bias == nil ? nil : (node.id, 2), output: value, outputRank: rank)
  }

  /// MatMul(x, B) followed by Add of a constant whose last axis is the channel (or 1).
  private static func matMulWithBias(_ add: Node, in graph: Graph) -> ChannelLayer? {
    guard add.inputs.count == 2, let output = add.output(0) else { return nil }
    for slot in 0..<2 {
      guard let y = add.input(slot), let c = graph.constant(add.input(1 - slot)), c.dtype == .float,
        graph.producer(of: y)?.opType == OpType.matMul,
        let matMul = producing(y, in: graph), case .matMul = matMul.kind, matMul.bias == nil
      else { continue }
      let rank = graph.shape(of: output)?.count
      guard let rank, rank == matMul.outputRank, biasFits(c, channels: matMul.channels, rank: rank) else { return nil }
      return ChannelLayer(
        node: matMul.node, kind: .matMul, weight: matMul.weight, channels: matMul.channels, bias: c,
        biasHolder: (add.id, 1 - slot), output: output, outputRank: rank)
    }
    return nil
  }

  /// Whether `bias` has at most `rank` axes and its last axis is `channels` or 1.
  private static func biasFits(_ bias: Tensor, channels: Int, rank: Int?) -> Bool {
    if let rank, bias.shape.count > rank { return false }
    guard let last = bias.shape.last else { return true }
    return last == channels || last == 1
  }

  // MARK: Folding

  /// Rewrites the layer to compute `affine(output)`; returns the value that now holds it (the
  /// caller points the folded op's readers at it). The old weight and bias are never edited in
  /// place: they may be shared.
  func fold(_ affine: ChannelAffine, named base: String, _ rewriter: inout Rewriter) throws -> ValueID {
    let graph = rewriter.graph
    let weightName = graph[node.input(1)!].name
    var factor = affine.scale, biasFactor = 1.0
    if case .gemm(_, let alpha, let beta) = kind {
      factor = factor.map { $0 * alpha }
      biasFactor = beta
    }
    if factor.contains(where: { $0 != 1 }) {
      let newWeight = rewriter.addInitializer(foldedName(weightName), scaledWeight(by: factor))
      rewriter.setInput(1, of: node.id, to: newWeight)
    }
    if case .gemm = kind {
      try rewriter.removeAttribute("alpha", of: node.id)
      try rewriter.removeAttribute("beta", of: node.id)
    }
    if let newBias = foldedBias(affine, biasFactor: biasFactor) {
      let biasName = bias == nil ? base + "_bias" : foldedName(graph[graph[biasHolder!.node].input(biasHolder!.slot)!].name)
      let biasValue = rewriter.addInitializer(biasName, newBias)
      if let (holder, slot) = biasHolder {
        rewriter.setInput(slot, of: holder, to: biasValue)
      } else if case .matMul = kind {
        let add = try rewriter.addNode(OpType.add, name: base + "_add", inputs: [output, biasValue])
        return rewriter.graph[add].output(0)!
      } else {
        rewriter.setInput(2, of: node.id, to: biasValue)
      }
    }
    return output
  }

  /// The weight times `factor[channel]`, computed in Double and stored as float32.
  func scaledWeight(by factor: [Double]) -> Tensor {
    let w = weight.floats ?? []
    let shape = weight.shape
    let inner = shape.dropFirst(2).reduce(1, *)
    var out = [Float](repeating: 0, count: w.count)
    w.withUnsafeBufferPointer { w in
      out.withUnsafeMutableBufferPointer { out in
        switch kind {
        case .conv:
          // Output channel c owns the contiguous block [c·n, (c+1)·n).
          let n = w.count / max(1, shape[0])
          for c in 0..<shape[0] {
            let f = factor[c]
            for i in c * n..<(c + 1) * n { out[i] = Float(Double(w[i]) * f) }
          }
        case .convTranspose(let group):
          // Weight [C_in, C_out/group, k…]: the channel of row (i, j) is group(i)·C_out/group + j.
          let perGroupOut = shape[1], inputsPerGroup = shape[0] / group
          for i in 0..<shape[0] {
            for j in 0..<perGroupOut {
              let f = factor[i / inputsPerGroup * perGroupOut + j], base = (i * perGroupOut + j) * inner
              for k in base..<base + inner { out[k] = Float(Double(w[k]) * f) }
            }
          }
        case .gemm(let transB, _, _) where transB:
          let n = shape[1]
          for r in 0..<shape[0] {
            let f = factor[r]
            for k in r * n..<(r + 1) * n { out[k] = Float(Double(w[k]) * f) }
          }
        case .gemm, .matMul:
          let n = shape[1]
          for r in 0..<shape[0] {
            for k in 0..<n { out[r * n + k] = Float(Double(w[r * n + k]) * factor[k]) }
          }
        }
      }
    }
    return Tensor(floats: out, shape: shape)
  }

  /// `biasFactor·bias·scale + shift`, with the channel on the last axis (materialized when the old
  /// bias broadcast there); nil when there is no bias and no shift.
  private func foldedBias(_ affine: ChannelAffine, biasFactor: Double) -> Tensor? {
    guard let bias else {
      guard affine.hasShift else { return nil }
      return Tensor(floats: affine.shift.map { Float($0) }, shape: [channels])
    }
    let old = bias.doubles ?? []
    var shape = bias.shape.isEmpty ? [channels] : bias.shape
    shape[shape.count - 1] = channels
    let count = shape.reduce(1, *)
    let repeats = old.count == count ? 1 : channels
    var out = [Float](repeating: 0, count: count)
    for f in 0..<count {
      let j = f % channels
      out[f] = Float(biasFactor * old[f / repeats] * affine.scale[j] + affine.shift[j])
    }
    return Tensor(floats: out, shape: shape)
  }
}

/// The name for a folded copy of the constant `name`: `w` → `w_folded`, and a refolded one keeps
/// its name's stem (`w_folded` → `w_folded_1`).
func foldedName(_ name: String) -> String {
  name.hasSuffix("_folded") ? name : name + "_folded"
}

extension Graph {
  /// The values of constant `value` as one number per channel, when it is float32 and broadcasts
  /// against an output of rank `rank` along `axis` only (`[C,1,1]`, `[1,C,1,1]`, `[C]` on the last
  /// axis, or a scalar): what an elementwise op with it does per channel.
  func perChannelConstant(_ value: ValueID?, channels: Int, axis: Int?, rank: Int?) -> [Double]? {
    guard let c = constant(value), c.dtype == .float, let values = c.doubles else { return nil }
    if values.count == 1 && c.shape.allSatisfy({ $0 == 1 }) {
      guard c.shape.count <= (rank ?? 1) else { return nil }
      return Array(repeating: values[0], count: channels)
    }
    guard let rank, let axis, c.shape.count <= rank else { return nil }
    let offset = rank - c.shape.count
    for (k, dim) in c.shape.enumerated() where dim != 1 {
      guard k + offset == axis, dim == channels else { return nil }
    }
    return values.count == channels ? values : nil
  }
}
