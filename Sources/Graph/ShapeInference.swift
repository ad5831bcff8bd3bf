/// Something shape inference noticed but could not reconcile: a declared type that disagrees with
/// the inferred one, or a node whose inputs or attributes make no sense for its operator.
public struct ShapeInferenceIssue: Sendable, Hashable, CustomStringConvertible {
  public enum Kind: Sendable, Hashable {
    /// A declared type disagrees with the inferred one; the declared one was kept.
    case conflict
    /// The node's inputs or attributes are inconsistent (an axis out of range, a kernel larger
    /// than its padded input, ...); its outputs were left as they were, or partly inferred.
    case invalidNode
    /// The graph has a cycle, so nothing was inferred.
    case cycle
  }

  public let kind: Kind
  /// The node concerned, in the graph inference ran on (for issues inside a subgraph: the node
  /// holding that subgraph).
  public let node: NodeID?
  public let message: String

  public init(kind: Kind, node: NodeID?, message: String) {
    self.kind = kind
    self.node = node
    self.message = message
  }

  public var description: String { message }
}

extension Graph {
  /// Infers the element type and shape of every node output it can, walking the nodes in
  /// topological order and the subgraphs of If, Loop and Scan nodes.
  ///
  /// A value's type is set where inference knows more than the value declares; a declared known
  /// dimension or element type is never replaced. A symbolic dimension (`N`) gives way to a known
  /// extent and propagates where the arithmetic allows (through Conv, Gemm, Reshape with 0 or -1,
  /// ...). Disagreements are returned as issues, never trapped on. Operators this version does not
  /// know, and nodes of other domains (but fused layers and ``OpType/Contrib``), leave their outputs
  /// untouched.
  ///
  /// - Parameter opset: the version of the default ONNX operator set the graph uses; it decides
  ///   whether axes, pads, splits, ... come from attributes or inputs.
  @discardableResult
  public mutating func inferShapes(opset: Int64) -> [ShapeInferenceIssue] {
    var inference = ShapeInference(graph: self, opset: opset)
    self = Graph()  // let `inference` own the storage uniquely, so updates do not copy it
    inference.run()
    self = inference.graph
    return inference.issues
  }
}

extension Model {
  /// The default operator set version assumed when a model imports none.
  public static let defaultOpsetVersion: Int64 = 21

  /// Infers shapes in the main graph with the model's default-domain opset
  /// (`defaultOpsetVersion` when the model imports none). See `Graph.inferShapes(opset:)`.
  @discardableResult
  public mutating func inferShapes() -> [ShapeInferenceIssue] {
    graph.inferShapes(opset: onnxOpsetVersion ?? Model.defaultOpsetVersion)
  }
}

/// The state of one shape inference run over one graph.
struct ShapeInference {
  typealias Rule = @Sendable (inout ShapeInference, Node) -> [ValueType?]

  var graph: Graph
  let opset: Int64
  var issues: [ShapeInferenceIssue] = []
  /// Known elements of small integer tensors that are not constants (the outputs of Shape and
  /// of arithmetic on them), so that Reshape, Expand, ... can read shapes computed in the graph.
  var data: [ValueID: [Dim]] = [:]
  /// The node being inferred, to attribute issues to.
  var current: NodeID?

  init(graph: Graph, opset: Int64) {
    self.graph = graph
    self.opset = opset
  }

  /// Every rule, keyed by op type (default domain only).
  static let rules: [String: Rule] = {
    var all: [String: Rule] = [:]
    for family in [elementwiseRules, normalizationRules, convolutionRules, matrixRules, recurrentRules,
      reshapeRules, indexingRules, generatorRules, reductionRules]
    {
      all.merge(family) { first, _ in first }
    }
    return all
  }()

  mutating func run() {
    guard let order = graph.topologicalOrder() else {
      let message = "graph '\(graph.name)' has a cycle; shapes not inferred"
      issues.append(ShapeInferenceIssue(kind: .cycle, node: nil, message: message))
      return
    }
    for id in order { inferNode(id) }
  }

  private mutating func inferNode(_ id: NodeID) {
    current = id
    inferSubgraphs(of: id)
    let node = graph[id]
    // A fused layer (FusedActivation) has its layer's shapes: the activation is elementwise.
    let fused = node.domain == FusedActivation.domain && FusedActivation.layerOpTypes.contains(node.opType)
    let contrib = node.domain == OpType.Contrib.domain ? Self.contribRules[node.opType] : nil
    guard let rule = contrib ?? ((OpType.isDefaultDomain(node.domain) || fused) ? Self.rules[node.opType] : nil)
    else { return }
    let inferred = rule(&self, node)
    for (i, type) in inferred.enumerated() {
      guard let type, let output = node.output(i) else { continue }
      apply(type, to: output)
    }
    propagateData(node)
  }

  // MARK: Issues

  /// Records that the current node is inconsistent.
  mutating func report(_ message: String) {
    let prefix = current.map { graph.describe($0) + ": " } ?? ""
    issues.append(ShapeInferenceIssue(kind: .invalidNode, node: current, message: prefix + message))
  }

  // MARK: Merging

  /// Sets `value`'s type to what `inferred` adds to its current type, reporting disagreements.
  private mutating func apply(_ inferred: ValueType, to value: ValueID) {
    let declared = graph[value].type
    var conflicts: [String] = []
    let merged = Self.merge(declared: declared, inferred: inferred, conflicts: &conflicts)
    if !conflicts.isEmpty, let declared {
      let what = "output '\(graph[value].name)' is declared \(Self.render(declared)) but inferred \(Self.render(inferred))"
      let prefix = current.map { graph.describe($0) + ": " } ?? ""
      issues.append(ShapeInferenceIssue(kind: .conflict, node: current, message: prefix + what))
    }
    if merged != declared { graph.updateValue(value) { $0.type = merged } }
  }

  /// The more specific of two types, dimension by dimension; where they disagree the declared
  /// one wins and a conflict is noted.
  static func merge(declared: ValueType?, inferred: ValueType, conflicts: inout [String]) -> ValueType {
    guard let declared else { return inferred }
    guard case .tensor(let d1, let s1) = declared, case .tensor(let d2, let s2) = inferred else {
      if declared != inferred { conflicts.append("type") }
      return declared
    }
    var dtype = d1
    if d1 == .undefined { dtype = d2 } else if d2 != .undefined && d1 != d2 { conflicts.append("element type") }
    guard let s1 else { return .tensor(dtype, shape: s2) }
    guard let s2 else { return .tensor(dtype, shape: s1) }
    guard s1.count == s2.count else {
      conflicts.append("rank")
      return .tensor(dtype, shape: s1)
    }
    return .tensor(dtype, shape: zip(s1, s2).map { mergeDim(declared: $0, inferred: $1, conflicts: &conflicts) })
  }

  private static func mergeDim(declared: Dim, inferred: Dim, conflicts: inout [String]) -> Dim {
    switch (declared, inferred) {
    case (.value(let a), .value(let b)):
      if a != b { conflicts.append("dimension") }
      return declared
    case (.value, _), (.param, .param), (.param, .unknown): return declared
    case (.param, .value), (.unknown, _): return inferred
    }
  }

  /// A type as ONNX's textual syntax writes it: `float[N,3,224,224]`.
  static func render(_ type: ValueType) -> String {
    guard case .tensor(let dtype, let shape) = type else { return "\(type)" }
    guard let shape else { return "\(dtype)[?rank]" }
    return "\(dtype)[" + shape.map(\.description).joined(separator: ",") + "]"
  }

  // MARK: Subgraphs

  /// Infers shapes inside the node's subgraphs and stores the annotated subgraphs back in the
  /// node. A subgraph's outer references take the types of the enclosing graph's values they
  /// name (they mirror those values, so the enclosing type replaces whatever they had).
  private mutating func inferSubgraphs(of id: NodeID) {
    let node = graph[id]
    guard node.attributes.contains(where: { !$0.subgraphs.isEmpty }) else { return }
    var attributes = node.attributes
    for i in attributes.indices {
      switch attributes[i].value {
      case .graph(let g): attributes[i].value = .graph(inferSubgraph(g, in: attributes[i].name))
      case .graphs(let gs): attributes[i].value = .graphs(gs.map { inferSubgraph($0, in: attributes[i].name) })
      default: break
      }
    }
    try? graph.setAttributes(of: id, attributes)
  }

  private mutating func inferSubgraph(_ subgraph: Graph, in attribute: String) -> Graph {
    var g = subgraph
    for ref in g.outerReferences {
      guard let outer = graph.value(named: g[ref].name), let type = graph[outer].type else { continue }
      g.updateValue(ref) { $0.type = type }
    }
    let nested = g.inferShapes(opset: opset)
    let prefix = current.map { "in '\(attribute)' of \(graph.describe($0)): " } ?? ""
    for issue in nested {
      issues.append(ShapeInferenceIssue(kind: issue.kind, node: current, message: prefix + issue.message))
    }
    return g
  }
}
