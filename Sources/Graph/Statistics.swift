/// Size and cost figures of a graph: what `rebirth inspect` and the reports print.
///
/// Node counts, the op histogram, parameters and bytes cover subgraphs (If branches, Loop and
/// Scan bodies) too; MACs inside a loop body are counted once, not per iteration.
public struct GraphStatistics: Sendable, Codable, Equatable {
  /// How many nodes have one op type.
  public struct OpCount: Sendable, Codable, Equatable {
    /// The op type, as `domain::Op` outside the default domain ("" or "ai.onnx").
    public var opType: String
    public var count: Int

    public init(opType: String, count: Int) {
      self.opType = opType
      self.count = count
    }
  }

  /// Every node, those of subgraphs included.
  public var nodeCount = 0
  /// The nodes of the graph itself.
  public var topLevelNodeCount = 0
  /// Nodes per op type, sorted by op type.
  public var opTypeHistogram: [OpCount] = []
  /// Elements of initializers and of Constant nodes' tensors.
  public var parameterCount = 0
  /// Bytes of the same tensors, by element type name (`float`, `int64`, ...).
  public var bytesByDType: [String: Int] = [:]
  /// Multiply-accumulates of Conv, ConvTranspose, Gemm, MatMul, LSTM, GRU and RNN nodes whose
  /// shapes are known; elementwise and data-movement ops count 0.
  public var macs = 0
  /// Nodes that perform MACs but whose shapes are not known well enough to count them.
  public var unknownMACNodes = 0
  /// Whether symbolic dims (`N`) were taken as 1 to count MACs.
  public var assumedSymbolicDimsAs1 = false

  public init() {}

  /// Bytes of all parameters.
  public var parameterBytes: Int { bytesByDType.values.reduce(0, +) }

  /// `MACs: 1234`, `MACs: ≥ 1234 (2 nodes of unknown shape)`, with `, symbolic dims taken as 1`
  /// when that was assumed.
  public var macSummary: String {
    var text = "MACs: \(macs)"
    if unknownMACNodes > 0 {
      text = "MACs: ≥ \(macs) (\(unknownMACNodes) node\(unknownMACNodes == 1 ? "" : "s") of unknown shape)"
    }
    if assumedSymbolicDimsAs1 { text += ", symbolic dims taken as 1" }
    return text
  }
}

extension Graph {
  /// The statistics of this graph with the types its values have now (see `Model.statistics()`,
  /// which infers shapes first).
  public func statistics() -> GraphStatistics {
    var counter = StatisticsCounter()
    counter.count(self)
    var result = counter.statistics
    result.topLevelNodeCount = nodeCount
    result.opTypeHistogram = counter.histogram.sorted { $0.key < $1.key }.map {
      GraphStatistics.OpCount(opType: $0.key, count: $0.value)
    }
    return result
  }
}

extension Model {
  /// The statistics of the main graph, after inferring shapes on a copy of the model.
  public func statistics() -> GraphStatistics {
    var copy = self
    _ = copy.inferShapes()
    return copy.graph.statistics()
  }
}

/// Walks a graph and its subgraphs, adding up statistics.
struct StatisticsCounter {
  var statistics = GraphStatistics()
  var histogram: [String: Int] = [:]

  mutating func count(_ graph: Graph) {
    for v in graph.initializers {
      switch graph[v].definition {
      case .initializer(let t), .input(default: .some(let t)): add(t)
      default: break
      }
    }
    for id in graph.nodeIDs {
      let node = graph[id]
      statistics.nodeCount += 1
      histogram[OpType.isDefaultDomain(node.domain) ? node.opType : "\(node.domain)::\(node.opType)", default: 0] += 1
      if node.opType == OpType.constant, OpType.isDefaultDomain(node.domain),
        let tensor = ShapeInference.constantValue(of: node)
      {
        add(tensor)
      }
      countMACs(node, in: graph)
      for attribute in node.attributes {
        for subgraph in attribute.subgraphs { count(subgraph) }
      }
    }
  }

  private mutating func add(_ tensor: Tensor) {
    statistics.parameterCount = statistics.parameterCount.addingSaturating(tensor.elementCount)
    statistics.bytesByDType[tensor.dtype.description, default: 0] += tensor.byteCount
  }

  private mutating func countMACs(_ node: Node, in graph: Graph) {
    let fused = node.domain == FusedActivation.domain && FusedActivation.layerOpTypes.contains(node.opType)
    let contrib = node.domain == OpType.Contrib.domain && node.opType == OpType.Contrib.attention
    guard let kind = contrib ? .attention : (OpType.isDefaultDomain(node.domain) || fused ? MACFormula(node.opType) : nil)
    else { return }
    var dims = DimResolver(graph: graph)
    guard let macs = kind.macs(node, &dims) else {
      statistics.unknownMACNodes += 1
      return
    }
    statistics.macs = statistics.macs.addingSaturating(macs)
    if dims.usedSymbol { statistics.assumedSymbolicDimsAs1 = true }
  }
}

/// Reads shapes as integers for counting, taking symbolic dims as 1.
struct DimResolver {
  let graph: Graph
  var usedSymbol = false

  /// The shape of `v` as integers; nil when its rank or a dim is unknown.
  mutating func shape(_ v: ValueID?) -> [Int]? {
    guard let v, let dims = graph[v].type?.tensorShape else { return nil }
    var result: [Int] = []
    for d in dims {
      switch d {
      case .value(let k) where k >= 0 && k <= 1 << 40: result.append(k)
      case .param:
        usedSymbol = true
        result.append(1)
      default: return nil
      }
    }
    return result
  }
}

/// How one kind of node performs multiply-accumulates.
enum MACFormula {
  /// Output elements × weight elements per output channel: N·Ho·Wo·M·(C/g)·kh·kw.
  case conv(weight: Int)
  /// Input elements × weight elements per input channel: N·H·W·C·(M/g)·kh·kw.
  case convTranspose
  /// M·N·K.
  case gemm
  /// Output elements × K (batch included).
  case matMul(b: Int)
  /// seq · batch · directions · gates · hidden · (input + hidden).
  case recurrent(gates: Int)
  /// com.microsoft.Attention, input [B,S,Nin], weights [Nin, W], output [B,S,Nv]: the projection
  /// B·S·Nin·W, then Q·Kᵀ and P·V over all heads, B·S·S·(N + Nv) with N = (W − Nv)/2.
  case attention

  init?(_ opType: String) {
    switch opType {
    case OpType.conv, OpType.convInteger: self = .conv(weight: 1)
    case OpType.qLinearConv: self = .conv(weight: 3)
    case OpType.convTranspose: self = .convTranspose
    case OpType.gemm: self = .gemm
    case OpType.matMul, OpType.matMulInteger: self = .matMul(b: 1)
    case OpType.qLinearMatMul: self = .matMul(b: 3)
    case OpType.lstm: self = .recurrent(gates: 4)
    case OpType.gru: self = .recurrent(gates: 3)
    case OpType.rnn: self = .recurrent(gates: 1)
    default: return nil
    }
  }

  /// The node's MACs, or nil when the shapes it needs are unknown (or the count overflows).
  func macs(_ node: Node, _ dims: inout DimResolver) -> Int? {
    switch self {
    case .conv(let weight):
      guard let y = dims.shape(node.output(0)), let w = dims.shape(node.input(weight)), !w.isEmpty else { return nil }
      return product(y + w.dropFirst())
    case .convTranspose:
      guard let x = dims.shape(node.input(0)), let w = dims.shape(node.input(1)), !w.isEmpty else { return nil }
      return product(x + w.dropFirst())
    case .gemm:
      guard let a = dims.shape(node.input(0)), let y = dims.shape(node.output(0)), a.count == 2 else { return nil }
      let k = (node.attribute("transA")?.int ?? 0) != 0 ? a[0] : a[1]
      return product(y + [k])
    case .matMul:
      guard let a = dims.shape(node.input(0)), let y = dims.shape(node.output(0)), let k = a.last else { return nil }
      return product(y + [k])
    case .recurrent(let gates): return recurrentMACs(node, gates: gates, &dims)
    case .attention:
      guard let x = dims.shape(node.input(0)), x.count == 3, let w = dims.shape(node.input(1)), w.count == 2,
        let y = dims.shape(node.output(0)), y.count == 3, w[1] >= y[2]
      else { return nil }
      let n = (w[1] - y[2]) / 2
      return product([x[0], x[1], x[2], w[1]]).flatMap { p in
        product([x[0], x[1], x[1], n + y[2]]).map { p.addingSaturating($0) }
      }
    }
  }

  private func recurrentMACs(_ node: Node, gates: Int, _ dims: inout DimResolver) -> Int? {
    guard let x = dims.shape(node.input(0)), x.count == 3, let w = dims.shape(node.input(1)), w.count == 3, gates > 0
    else { return nil }
    let hidden = node.attribute("hidden_size")?.int.flatMap { Int(exactly: $0) } ?? w[1] / gates
    guard hidden >= 0 && hidden <= 1 << 40 else { return nil }
    // x is [seq, batch, input] or [batch, seq, input]; w is [directions, gates·hidden, input].
    return product([x[0], x[1], w[0], gates, hidden, x[2] + hidden])
  }

  private func product(_ factors: [Int]) -> Int? {
    var result = 1
    for f in factors {
      let (p, overflow) = result.multipliedReportingOverflow(by: f)
      guard !overflow, f >= 0 else { return nil }
      result = p
    }
    return result
  }
}

extension Int {
  fileprivate func addingSaturating(_ other: Int) -> Int {
    let (sum, overflow) = addingReportingOverflow(other)
    return overflow ? .max : sum
  }
}
