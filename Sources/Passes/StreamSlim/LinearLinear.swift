import Graph

/// Two linear layers with nothing between as one (METHODS 1.7.4, dense form).
///
///     h = Gemm<alpha α1, beta β1, transB t1>(x, B1, C1)     or   h = MatMul(x, B1)
///     y = Gemm<alpha α2, beta β2, transB t2>(h, B2, C2)     or   y = MatMul(h, B2)
///     →  y = Gemm(x, W, b)   (MatMul(x, W) when both are MatMul)
///        W = (α1·B1') · (α2·B2')        B' = transB ? Bᵀ : B          ([n, h]·[h, m] = [n, m])
///        b = (β1·C1) · (α2·B2') + β2·C2                                 (a missing C is 0)
///
/// Weights constant float32 matrices (not graph inputs), biases constant and per output feature
/// (a scalar, [m] or [1, m]), transA 0. The merged Gemm keeps the second layer's transB. It pays
/// only when n·m < h·(n + m): two narrowing layers merge, a bottleneck (n, m > h) does not.
struct LinearLinear: RewritePattern {
  static let name = "linear-linear"
  static let rootOpTypes: Set<String>? = [OpType.gemm, OpType.matMul]

  let cost: StreamCostModel
  /// The model's default-domain opset: Gemm's bias is optional from 11, broadcast from 7.
  let opset: Int

  struct Match {
    let first: LinearLayer
    let second: LinearLayer
    let macsBefore: Double, macsAfter: Double
    var makesGemm: Bool { first.isGemm || second.isGemm }
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let h = node.input(0), graph.hasSingleUse(h),
      let producer = graph.producer(of: h), let first = LinearLayer(producer, in: graph),
      let second = LinearLayer(node, in: graph), second.inFeatures == first.outFeatures
    else { return nil }
    let m = Match(first: first, second: second, macsBefore: 0, macsAfter: 0)
    if m.makesGemm {
      guard opset >= 7, first.inputRank == 2 else { return nil }
    }
    let (n, hidden, out) = (Double(first.inFeatures), Double(first.outFeatures), Double(second.outFeatures))
    let macsBefore = first.rows * (n * hidden + hidden * out), macsAfter = first.rows * n * out
    let hasBias = first.bias != nil || second.bias != nil
    let parametersBefore = n * hidden + hidden * out + (first.bias != nil ? hidden : 0) + (second.bias != nil ? out : 0)
    let parametersAfter = n * out + (hasBias ? out : 0)
    guard
      cost.accepts(
        macsBefore: macsBefore, macsAfter: macsAfter, parametersBefore: parametersBefore, parametersAfter: parametersAfter)
    else { return nil }
    return Match(first: first, second: second, macsBefore: macsBefore, macsAfter: macsAfter)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let graph = rewriter.graph
    let firstLabel = graph.label(m.first.node), secondLabel = graph.label(m.second.node)
    guard let w1 = m.first.dense(), let w2 = m.second.dense(), let b2 = m.second.denseBias(),
      let b1 = m.first.denseBias(), let weightName = m.second.node.input(1).map({ graph[$0].name })
    else { throw StreamSlimError.unreadable }
    let (n, hidden, out) = (m.first.inFeatures, m.first.outFeatures, m.second.outFeatures)
    let weight = LinearLayer.multiply(w1, w2, n, hidden, out)
    var inputs: [ValueID?]
    if m.makesGemm && m.second.isGemm && m.second.transB {
      var transposed = Array(repeating: 0.0, count: n * out)
      for i in 0..<n { for j in 0..<out { transposed[j * n + i] = weight[i * out + j] } }
      inputs = [m.first.input, rewriter.addInitializer(weightName + "_merged", Tensor(floats: transposed.map { Float($0) }, shape: [out, n]))]
    } else {
      inputs = [m.first.input, rewriter.addInitializer(weightName + "_merged", Tensor(floats: weight.map { Float($0) }, shape: [n, out]))]
    }
    if m.makesGemm && (m.first.bias != nil || m.second.bias != nil || opset < 11) {
      var bias = b2
      for j in 0..<out { for k in 0..<hidden where b1[k] != 0 { bias[j] += b1[k] * w2[k * out + j] } }
      let base = (m.second.bias ?? m.first.bias).map { graph[$0].name } ?? weightName + "_bias"
      inputs.append(rewriter.addInitializer(base + "_merged", Tensor(floats: bias.map { Float($0) }, shape: [out])))
    }
    if m.makesGemm {
      if !m.second.isGemm { rewriter.setOpType(OpType.gemm, of: m.second.node.id) }
      let transB = m.second.isGemm && m.second.transB
      try rewriter.setAttributes(of: m.second.node.id, transB ? [Attribute("transB", .int(1))] : [])
    }
    rewriter.setInputs(of: m.second.node.id, inputs)
    rewriter.erase(m.first.node.id)
    return "\(firstLabel) + \(secondLabel) merged into \(rewriter.graph.label(rewriter.graph[m.second.node.id])) "
      + "(\(n)→\(hidden)→\(out) features as \(n)→\(out)): "
      + StreamCostModel.describe(macsBefore: m.macsBefore, macsAfter: m.macsAfter)
  }
}

/// A float32 Gemm (transA 0) or MatMul with a constant 2-D weight, as ``LinearLinear`` reads it.
struct LinearLayer: Sendable {
  let node: Node
  let input: ValueID
  let isGemm: Bool
  /// B as stored.
  let weight: Tensor
  let transB: Bool
  let alpha: Double, beta: Double
  /// C, when present.
  let bias: ValueID?
  let biasTensor: Tensor?
  let inFeatures: Int, outFeatures: Int
  let inputRank: Int
  /// The product of the input's leading dimensions (symbolic ones count as 1).
  let rows: Double

  init?(_ node: Node, in graph: Graph) {
    guard OpType.isDefaultDomain(node.domain), node.outputs.count == 1,
      let input = node.input(0), graph.constant(input) == nil, graph.elementType(of: input) == .float,
      let weight = graph.constant(node.input(1)), weight.dtype == .float, weight.shape.count == 2,
      weight.shape.allSatisfy({ $0 >= 1 }),
      let shape = graph.shape(of: input), !shape.isEmpty
    else { return nil }
    switch node.opType {
    case OpType.gemm:
      guard node.inputs.count <= 3, shape.count == 2, (node.attribute("transA")?.int ?? 0) == 0,
        node.attribute("broadcast") == nil
      else { return nil }
      isGemm = true
      transB = (node.attribute("transB")?.int ?? 0) != 0
      alpha = Double(node.attribute("alpha")?.float ?? 1)
      beta = Double(node.attribute("beta")?.float ?? 1)
      bias = node.inputs.count == 3 ? node.input(2) : nil
    case OpType.matMul:
      guard node.inputs.count == 2 else { return nil }
      isGemm = false
      transB = false
      alpha = 1
      beta = 1
      bias = nil
    default:
      return nil
    }
    inFeatures = transB ? weight.shape[1] : weight.shape[0]
    outFeatures = transB ? weight.shape[0] : weight.shape[1]
    if let last = shape.last?.value, last != inFeatures { return nil }
    if let bias {
      guard let c = graph.constant(bias), c.dtype == .float,
        [[], [1], [outFeatures], [1, 1], [1, outFeatures]].contains(c.shape)
      else { return nil }
      biasTensor = c
    } else {
      biasTensor = nil
    }
    self.node = node
    self.input = input
    self.weight = weight
    inputRank = shape.count
    rows = shape.dropLast().reduce(1.0) { $0 * Double($1.value ?? 1) }
  }

  /// α·B' as a row-major [in, out] matrix.
  func dense() -> [Double]? {
    guard let b = weight.doubles, b.count == inFeatures * outFeatures else { return nil }
    if !transB { return b.map { $0 * alpha } }
    var w = Array(repeating: 0.0, count: b.count)
    for i in 0..<inFeatures { for j in 0..<outFeatures { w[i * outFeatures + j] = alpha * b[j * inFeatures + i] } }
    return w
  }

  /// β·C broadcast to [out] (zeros without C).
  func denseBias() -> [Double]? {
    guard let biasTensor else { return Array(repeating: 0, count: outFeatures) }
    guard let c = biasTensor.doubles else { return nil }
    if c.count == 1 { return Array(repeating: beta * c[0], count: outFeatures) }
    guard c.count == outFeatures else { return nil }
    return c.map { beta * $0 }
  }

  /// [n, h] · [h, m], row-major.
  static func multiply(_ a: [Double], _ b: [Double], _ n: Int, _ h: Int, _ m: Int) -> [Double] {
    var c = Array(repeating: 0.0, count: n * m)
    c.withUnsafeMutableBufferPointer { c in
      a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
          for i in 0..<n {
            for k in 0..<h {
              let x = a[i * h + k]
              if x == 0 { continue }
              for j in 0..<m { c[i * m + j] += x * b[k * m + j] }
            }
          }
        }
      }
    }
    return c
  }
}
