import Graph

/// Computes each value once: equal constants and equal nodes are merged into the first of them.
///
///     <float[3] b1 = {1, 2, 3}, float[3] b2 = {1, 2, 3}>
///     a = Relu(x); b = Relu(x); c = Add(a, b2); d = Add(b, b1)
///     → a = Relu(x); c = Add(a, b1)                  (d read c, b read a)
///
/// First constants: initializers with the same dtype, shape and bytes (bucketed by
/// ``Tensor/digest``, confirmed by `hasSameContent`) are one value, and readers of the later
/// ones read the first. Then nodes, in topological order: two nodes with the same op type, domain,
/// attributes (compared structurally: floats by bit pattern, tensors by content) and inputs (the
/// same values, so after the constants are merged, equal constants count as the same input)
/// compute the same outputs, so the readers of the later node's outputs read the earlier node's,
/// and the later node goes. A node reads its inputs only after they were merged, so chains of
/// duplicates (`Conv` then `Relu` twice over) collapse in one sweep.
///
/// Never merged:
/// - initializers that are graph inputs (a caller may override them) or graph outputs, and
///   initializers that subgraphs read by name (they may still be the one kept);
/// - nodes that do not compute a function of their inputs: RandomNormal, RandomUniform, their
///   -Like forms, Multinomial, Bernoulli, and Dropout unless it is surely in inference mode;
/// - nodes with subgraph attributes (If, Loop, Scan) or references to function attributes;
/// - nodes outside the ONNX domains (`""`, `ai.onnx`, `ai.onnx.ml`): a custom op's semantics are
///   unknown;
/// - a later node whose output is a graph output that cannot take over the earlier node's output
///   (``Graph/canForward(_:to:)``: the earlier output is itself a graph output); it stays.
public struct EliminateCommonSubexpressions: Pass {
  public static let name = "cse"
  public static let summary = "Merge equal initializers and nodes that compute the same value from the same inputs"
  public static let isExact = true
  public static let isDefault = true

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    mergeEqualConstants(&rewriter)
    mergeEqualNodes(&rewriter)
  }

  // MARK: Constants

  private func mergeEqualConstants(_ rewriter: inout Rewriter) {
    // Only tensors of one dtype and shape can be equal: digest those (a full read of the bytes)
    // only when there are two of them.
    var candidates: [ShapeKey: [ValueID]] = [:]
    for value in rewriter.graph.initializers {
      // `constant` is nil for graph inputs with a default: a caller may override those.
      guard let tensor = rewriter.graph.constant(value), !rewriter.graph.isGraphOutput(value) else { continue }
      candidates[ShapeKey(dtype: tensor.dtype.rawValue, shape: tensor.shape), default: []].append(value)
    }
    var buckets: [UInt64: [ValueID]] = [:]
    for value in candidates.values.filter({ $0.count > 1 }).joined().sorted() {
      guard rewriter.canRewrite else { return }
      let graph = rewriter.graph
      guard let tensor = graph.constant(value) else { continue }
      // A value a subgraph reads by name stays itself (renaming it inside the subgraph could meet
      // a local value of the new name, or capture the kept one twice); it can still be the kept one.
      let capturedBySubgraph = graph[value].uses.contains { if case .capture = $0 { return true } else { return false } }
      let digest = tensor.contentHash
      let first = buckets[digest, default: []].first { graph.constant($0)?.hasSameContent(as: tensor) == true }
      guard let first, !capturedBySubgraph else {
        buckets[digest, default: []].append(value)
        continue
      }
      let name = graph[value].name, kept = graph[first].name
      rewriter.beginChange("equal-constants")
      rewriter.replaceAllUses(of: value, with: first)
      rewriter.commitChange("initializer '\(name)' merged into '\(kept)': equal \(tensor.dtype)\(tensor.shape)")
    }
  }

  // MARK: Nodes

  private func mergeEqualNodes(_ rewriter: inout Rewriter) {
    var seen: [NodeKey: [NodeID]] = [:]
    for id in rewriter.graph.topologicalOrder() ?? rewriter.graph.nodeIDs {
      guard rewriter.canRewrite else { return }
      let graph = rewriter.graph
      guard graph.contains(id), isMergeable(graph[id], opset: rewriter.opset, in: graph) else { continue }
      let node = graph[id]
      let key = NodeKey(node)
      guard let earlier = seen[key, default: []].first(where: { computeSame(graph[$0], node) }) else {
        seen[key, default: []].append(id)
        continue
      }
      guard canReplace(node, with: graph[earlier], in: graph) else { continue }
      let label = graph.label(node), kept = graph.label(graph[earlier])
      rewriter.beginChange("equal-nodes")
      for (mine, theirs) in zip(node.outputs, graph[earlier].outputs) {
        guard let mine, let theirs, !rewriter.graph[mine].uses.isEmpty else { continue }
        rewriter.replaceAllUses(of: mine, with: theirs)
      }
      rewriter.erase(id)
      rewriter.commitChange("\(label) merged into \(kept): same op, attributes and inputs")
    }
  }

  /// Whether `node` computes a function of its inputs and attributes alone.
  private func isMergeable(_ node: Node, opset: Int, in graph: Graph) -> Bool {
    guard Self.domains.contains(node.domain), !Self.nondeterministic.contains(node.opType), node.captures.isEmpty,
      node.attributes.allSatisfy({ $0.subgraphs.isEmpty && $0.refAttrName == nil })
    else { return false }
    if node.opType == OpType.dropout && node.domain != "ai.onnx.ml" {
      // Before opset 7 a missing is_test meant training; from 12 a training_mode input may.
      if opset < 7 && node.attribute("is_test")?.int != 1 { return false }
      if node.attribute("is_test")?.int == 0 { return false }
      if let mode = node.input(2), !graph.isConstant(mode, everywhere: 0) { return false }
    }
    return true
  }

  /// Whether every read output of `later` can be replaced by the same output of `earlier`.
  private func canReplace(_ later: Node, with earlier: Node, in graph: Graph) -> Bool {
    guard later.outputs.count == earlier.outputs.count else { return false }
    for (mine, theirs) in zip(later.outputs, earlier.outputs) {
      guard let mine, !graph[mine].uses.isEmpty else { continue }
      guard let theirs, graph.canForward(mine, to: theirs) else { return false }
    }
    return true
  }

  /// Whether two nodes surely compute the same outputs.
  private func computeSame(_ a: Node, _ b: Node) -> Bool {
    a.opType == b.opType && Self.normalized(a.domain) == Self.normalized(b.domain) && a.overload == b.overload
      && a.inputs == b.inputs && a.outputs.count == b.outputs.count && attributesMatch(a.attributes, b.attributes)
  }

  static func normalized(_ domain: String) -> String { domain == "ai.onnx" ? "" : domain }

  static let domains: Set<String> = ["", "ai.onnx", "ai.onnx.ml"]

  /// Ops whose outputs are not a function of their inputs (spelled here, as OpType lists the
  /// deterministic ones).
  static let nondeterministic: Set<String> = [
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
  ]
}

/// What equal constants share before their bytes are read.
private struct ShapeKey: Hashable {
  let dtype: Int32
  let shape: [Int]
}

/// What equal nodes share, hashed: op, domain, inputs and the attributes' digest.
private struct NodeKey: Hashable {
  let opType: String
  let domain: String
  let inputs: [ValueID?]
  let attributes: Int

  init(_ node: Node) {
    opType = node.opType
    domain = EliminateCommonSubexpressions.normalized(node.domain)
    inputs = node.inputs
    var hasher = Hasher()
    for attribute in node.attributes.sorted(by: { $0.name < $1.name }) { hashAttribute(attribute, into: &hasher) }
    attributes = hasher.finalize()
  }
}

// MARK: Attributes, compared structurally

/// Whether two attribute lists hold the same names and values, in any order (doc strings aside).
private func attributesMatch(_ a: [Attribute], _ b: [Attribute]) -> Bool {
  guard a.count == b.count else { return false }
  let x = a.sorted { $0.name < $1.name }, y = b.sorted { $0.name < $1.name }
  return zip(x, y).allSatisfy { p, q in p.name == q.name && p.refAttrName == q.refAttrName && valuesMatch(p.value, q.value) }
}

/// Structural equality of attribute values: floats by bit pattern (so NaN equals itself and −0 is
/// not 0), tensors by content. Subgraphs never match: nodes holding them are not merged.
private func valuesMatch(_ a: Attribute.Value, _ b: Attribute.Value) -> Bool {
  switch (a, b) {
  case (.float(let p), .float(let q)): return p.bitPattern == q.bitPattern
  case (.int(let p), .int(let q)): return p == q
  case (.string(let p), .string(let q)): return p == q
  case (.tensor(let p), .tensor(let q)): return p.hasSameContent(as: q)
  case (.sparseTensor(let p), .sparseTensor(let q)): return p == q
  case (.type(let p), .type(let q)): return p == q
  case (.floats(let p), .floats(let q)): return p.map(\.bitPattern) == q.map(\.bitPattern)
  case (.ints(let p), .ints(let q)): return p == q
  case (.strings(let p), .strings(let q)): return p == q
  case (.tensors(let p), .tensors(let q)): return p.count == q.count && zip(p, q).allSatisfy { $0.hasSameContent(as: $1) }
  case (.sparseTensors(let p), .sparseTensors(let q)): return p == q
  case (.types(let p), .types(let q)): return p == q
  case (.reference(let p), .reference(let q)): return p == q
  default: return false
  }
}

/// Hashes what ``valuesMatch(_:_:)`` compares, so matching attributes hash alike.
private func hashAttribute(_ attribute: Attribute, into hasher: inout Hasher) {
  hasher.combine(attribute.name)
  switch attribute.value {
  case .float(let v): hasher.combine(v.bitPattern)
  case .int(let v): hasher.combine(v)
  case .string(let v): hasher.combine(v)
  case .tensor(let t): hasher.combine(t.contentHash)
  case .sparseTensor(let v): hasher.combine(v)
  case .type(let v): hasher.combine(v)
  case .floats(let v): hasher.combine(v.map(\.bitPattern))
  case .ints(let v): hasher.combine(v)
  case .strings(let v): hasher.combine(v)
  case .tensors(let v): hasher.combine(v.map(\.contentHash))
  case .sparseTensors(let v): hasher.combine(v)
  case .types(let v): hasher.combine(v)
  case .graph, .graphs: hasher.combine("subgraph")
  case .reference(let v): hasher.combine(v)
  }
}
