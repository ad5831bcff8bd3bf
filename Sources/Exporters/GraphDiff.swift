import Graph

/// How graph B differs from graph A: what `rebirth diff A B` prints.
///
/// Nodes are matched in phases:
/// 1. by name: a node with a non-empty name matches the node of B with the same name, whatever
///    its op type (a changed op type is then reported as a change);
/// 2. by structure, repeated until nothing more matches, among nodes of the same op type and
///    domain: the same name for one of its outputs; the same inputs (every non-constant input of
///    the A node maps to the B node's input in the same slot, walking forward in topological
///    order from the graph inputs and the nodes already matched); the same readers (an unmatched
///    node of B produces, in the same slot, what the match of one of its readers in A reads).
///
/// Values are matched by name, or as the same output of matched nodes; a value of A that neither
/// finds is seen through the unmatched node producing it (see `ValueMap`). A matched pair differs
/// when its op type, attributes or inputs differ: a constant input (a weight) differs when its
/// type or content (`Tensor.hasSameContent`) does, whatever its name; another input differs when
/// it is not the image of A's input (rewiring).
///
/// A node of A without a match is *merged into* a node of B when what its readers read now comes
/// from a node of B that is new, or that is the match of one of its producers and changed its op
/// type, attributes or weights (a BatchNormalization folded into the Conv before it); or when it
/// has constant inputs or attributes and the match of one of its readers changed in that way (a
/// Pad folded into the Conv after it). Otherwise it is *removed*. Nodes of B without a match are
/// *added*.
///
/// Lists come in the topological order of A (removed, merged, changed) and of B (added).
public struct GraphDiff: Sendable, Codable, Equatable {
  /// A node as the diff names it.
  public struct NodeRef: Sendable, Codable, Equatable {
    public var name: String
    public var opType: String
    /// Its first output's name: how an unnamed node is told apart.
    public var output: String

    /// "Conv conv3", or "Identity →x1" for an unnamed node.
    public var label: String { "\(opType) \(shortName)" }
    /// "conv3", or "→x1" for an unnamed node.
    public var shortName: String { name.isEmpty ? "→\(output)" : name }
  }

  /// An attribute set, removed or given another value; values as ONNX's textual syntax writes them.
  public struct AttributeChange: Sendable, Codable, Equatable {
    public var name: String
    /// Nil when A's node has no such attribute.
    public var before: String?
    /// Nil when B's node has no such attribute.
    public var after: String?
  }

  /// An input slot whose value differs.
  public struct InputChange: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
      /// Both are constants, of another type or content.
      case weight
      /// B reads another value than the image of A's.
      case rewired
      /// An omitted optional input is now given.
      case added
      /// An input is now omitted.
      case removed
    }
    public var slot: Int
    public var kind: Kind
    /// The value names; nil for an omitted input.
    public var before: String?
    public var after: String?
    /// For constants, `float[64,3,7,7]`.
    public var beforeType: String?
    public var afterType: String?
    /// For weights of the same type: whether the data differs.
    public var valuesChanged: Bool
  }

  /// A matched pair of nodes that differ.
  public struct Change: Sendable, Codable, Equatable {
    public var a: NodeRef
    public var b: NodeRef
    /// How they were matched: `name`, `outputs`, `inputs` or `readers`.
    public var matchedBy: String
    public var attributes: [AttributeChange]
    public var inputs: [InputChange]

    /// Whether more than the wiring changed: the op type, an attribute or a weight.
    public var changesContent: Bool {
      a.opType != b.opType || !attributes.isEmpty || inputs.contains { $0.kind != .rewired }
    }
  }

  /// A node of A that B computes as part of another node.
  public struct Merge: Sendable, Codable, Equatable {
    public var node: NodeRef
    public var into: NodeRef
    /// Whether `into` is a node added in B (rather than a changed match).
    public var intoAdded: Bool
  }

  /// A graph input or output added, removed or retyped, by name.
  public struct PortChange: Sendable, Codable, Equatable {
    /// `input` or `output`.
    public var kind: String
    public var name: String
    /// Types as text; nil when absent on that side.
    public var before: String?
    public var after: String?
  }

  /// The files compared, as the caller names them.
  public var a = ""
  public var b = ""
  public var before: GraphStatistics
  public var after: GraphStatistics
  public var interface: [PortChange] = []
  public var removed: [NodeRef] = []
  public var merged: [Merge] = []
  public var added: [NodeRef] = []
  public var changed: [Change] = []
  public var unchangedCount = 0
  public var matchedByName = 0
  public var matchedByStructure = 0

  /// Whether the graphs have the same nodes, attributes, weights and interface.
  public var isEmpty: Bool {
    interface.isEmpty && removed.isEmpty && merged.isEmpty && added.isEmpty && changed.isEmpty
  }
}

/// The diff together with the node identities behind it, for pictures of B.
public struct GraphComparison: Sendable {
  public var diff: GraphDiff
  /// Matched nodes, A to B.
  public var matches: [NodeID: NodeID]
  /// Nodes of B that are new, or matched and changed.
  public var addedInB: Set<NodeID>
  public var changedInB: Set<NodeID>
  /// Unmatched nodes of A in topological order, each with the node of B it merged into, if any.
  public var removedFromA: [(node: NodeID, mergedInto: NodeID?)]

  /// Compares two models (their main graphs); `a` and `b` should have their shapes inferred, for
  /// the statistics and the types shown.
  public init(_ a: Model, _ b: Model) {
    var matcher = NodeMatcher(a.graph, b.graph)
    matcher.run()
    let (ga, gb) = (a.graph, b.graph)
    var diff = GraphDiff(before: a.graph.statistics(), after: b.graph.statistics())
    diff.interface = portChanges(ga, gb)
    diff.matchedByName = matcher.how.values.filter { $0 == "name" }.count
    diff.matchedByStructure = matcher.aToB.count - diff.matchedByName
    matches = matcher.aToB
    (addedInB, changedInB, removedFromA) = ([], [], [])
    let valueMap = ValueMap(a: ga, b: gb, matches: matcher.aToB)
    var changes: [NodeID: GraphDiff.Change] = [:]
    for id in matcher.orderA {
      guard let m = matcher.aToB[id] else { continue }
      let change = compare(id, m, how: matcher.how[id] ?? "name", ga, gb, valueMap)
      if let change {
        diff.changed.append(change)
        changes[m] = change
        changedInB.insert(m)
      } else {
        diff.unchangedCount += 1
      }
    }
    for id in matcher.orderA where matcher.aToB[id] == nil {
      let target = mergeTarget(of: id, ga, gb, matcher, changes)
      removedFromA.append((id, target))
      if let target {
        diff.merged.append(
          .init(node: GraphDiff.NodeRef(ga[id], in: ga), into: GraphDiff.NodeRef(gb[target], in: gb), intoAdded: matcher.bToA[target] == nil))
      } else {
        diff.removed.append(GraphDiff.NodeRef(ga[id], in: ga))
      }
    }
    for id in matcher.orderB where matcher.bToA[id] == nil {
      diff.added.append(GraphDiff.NodeRef(gb[id], in: gb))
      addedInB.insert(id)
    }
    self.diff = diff
  }
}

// MARK: Matching

/// Pairs nodes of A with nodes of B, by name and then by structure.
struct NodeMatcher {
  let a: Graph
  let b: Graph
  let orderA: [NodeID]
  let orderB: [NodeID]
  var aToB: [NodeID: NodeID] = [:]
  var bToA: [NodeID: NodeID] = [:]
  /// How each node of A was matched.
  var how: [NodeID: String] = [:]
  /// Position of each node of B in `orderB`, to break ties the same way every time.
  let rankB: [NodeID: Int]

  init(_ a: Graph, _ b: Graph) {
    self.a = a
    self.b = b
    orderA = a.topologicalOrder() ?? a.nodeIDs
    orderB = b.topologicalOrder() ?? b.nodeIDs
    rankB = Dictionary(uniqueKeysWithValues: orderB.enumerated().map { ($1, $0) })
  }

  mutating func run() {
    matchByName()
    var progress = true
    while progress {
      let before = aToB.count
      matchByOutputNames()
      matchByInputs()
      matchByReaders()
      progress = aToB.count > before
    }
  }

  private mutating func pair(_ x: NodeID, _ y: NodeID, _ reason: String) {
    aToB[x] = y
    bToA[y] = x
    how[x] = reason
  }

  private func sameKind(_ x: NodeID, _ y: NodeID) -> Bool {
    bToA[y] == nil && a[x].opType == b[y].opType && a[x].domain == b[y].domain
  }

  private mutating func matchByName() {
    var byName: [String: [NodeID]] = [:]
    for id in orderB where !b[id].name.isEmpty { byName[b[id].name, default: []].append(id) }
    for id in orderA where !a[id].name.isEmpty {
      guard let y = byName[a[id].name]?.first(where: { bToA[$0] == nil }) else { continue }
      pair(id, y, "name")
    }
  }

  private mutating func matchByOutputNames() {
    for id in orderA where aToB[id] == nil {
      for case let v? in a[id].outputs {
        guard let w = b.value(named: a[v].name), let y = b[w].producer, sameKind(id, y) else { continue }
        pair(id, y, "outputs")
        break
      }
    }
  }

  private mutating func matchByInputs() {
    for id in orderA where aToB[id] == nil {
      let node = a[id]
      let slots = node.inputs.indices.filter { node.inputs[$0] != nil && constantData(node.inputs[$0], a) == nil }
      guard let first = slots.first, let anchor = image(node.inputs[first]) else { continue }
      let candidates = b[anchor].uses.compactMap { use -> NodeID? in
        guard case .input(let y, let k) = use, k == first, sameKind(id, y) else { return nil }
        let wired = slots.allSatisfy { image(node.inputs[$0]) == b[y].input($0) }
        // A constant (or omitted) input of A is a constant or omitted in B too, whatever its data.
        let constants = node.inputs.indices.allSatisfy {
          slots.contains($0) || b[y].input($0).map { constantData($0, b) != nil } ?? true
        }
        return wired && constants ? y : nil
      }
      if let y = candidates.min(by: { rankB[$0, default: 0] < rankB[$1, default: 0] }) { pair(id, y, "inputs") }
    }
  }

  /// The value of B that `v` of A corresponds to with the matches so far.
  func image(_ v: ValueID?) -> ValueID? {
    ValueMap(a: a, b: b, matches: aToB).image(v)
  }

  private mutating func matchByReaders() {
    for id in orderA.reversed() where aToB[id] == nil {
      search: for (k, output) in a[id].outputs.enumerated() {
        guard let output else { continue }
        for case .input(let reader, let slot) in a[output].uses {
          guard let r = aToB[reader], let w = b[r].input(slot), case .node(let y, let kb) = b[w].definition,
            kb == k, sameKind(id, y)
          else { continue }
          pair(id, y, "readers")
          break search
        }
      }
    }
  }
}

/// Maps values of A to values of B: outputs of matched nodes to the same outputs, others by name.
/// A value that neither finds is seen through its producer when that node has no match: it maps
/// as the producer's first non-constant input does (so that `Relu(Identity(c))` in A reads the
/// image of `c`, as `Relu(c)` does in B once the Identity is gone).
struct ValueMap {
  let a: Graph
  let b: Graph
  let matches: [NodeID: NodeID]

  func image(_ v: ValueID?) -> ValueID? {
    var current = v, seen = Set<ValueID>()
    while let v = current, seen.insert(v).inserted {
      if case .node(let p, let k) = a[v].definition, let q = matches[p] { return b[q].output(k) }
      if let w = b.value(named: a[v].name) { return w }
      guard let p = a[v].producer else { return nil }
      current = a[p].inputs.first { $0 != nil && constantData($0, a) == nil } ?? nil
    }
    return nil
  }
}

// MARK: Comparing matched nodes

private func compare(
  _ x: NodeID, _ y: NodeID, how: String, _ a: Graph, _ b: Graph, _ map: ValueMap
) -> GraphDiff.Change? {
  let (m, n) = (a[x], b[y])
  var change = GraphDiff.Change(a: GraphDiff.NodeRef(m, in: a), b: GraphDiff.NodeRef(n, in: b), matchedBy: how, attributes: [], inputs: [])
  let names = Set(m.attributes.map(\.name)).union(n.attributes.map(\.name)).sorted()
  for name in names {
    let p = m.attribute(name), q = n.attribute(name)
    if let p, let q, GraphDiff.attributeKey(p) == GraphDiff.attributeKey(q) { continue }
    change.attributes.append(.init(name: name, before: p.map(GraphDiff.attributeText), after: q.map(GraphDiff.attributeText)))
  }
  for slot in 0..<max(m.inputs.count, n.inputs.count) {
    if let c = compareInput(slot, m.input(slot), n.input(slot), a, b, map) { change.inputs.append(c) }
  }
  let same = m.opType == n.opType && m.domain == n.domain && change.attributes.isEmpty && change.inputs.isEmpty
  return same ? nil : change
}

private func compareInput(
  _ slot: Int, _ v: ValueID?, _ w: ValueID?, _ a: Graph, _ b: Graph, _ map: ValueMap
) -> GraphDiff.InputChange? {
  let s = constantData(v, a), t = constantData(w, b)
  let before = v.map { a[$0].name }, after = w.map { b[$0].name }
  var change = GraphDiff.InputChange(
    slot: slot, kind: .rewired, before: before, after: after, beforeType: s.map(GraphDiff.tensorTypeText),
    afterType: t.map(GraphDiff.tensorTypeText), valuesChanged: false)
  switch (v, w) {
  case (nil, nil): return nil
  case (nil, _?): change.kind = .added
  case (_?, nil): change.kind = .removed
  case (_?, _?):
    if let s, let t {
      if s.hasSameContent(as: t) { return nil }
      change.kind = .weight
      change.valuesChanged = s.dtype == t.dtype && s.shape == t.shape
    } else if s == nil, t == nil, map.image(v) == w {
      return nil
    }
  }
  return change
}

/// The data of `v` when it is a constant initializer or the output of a Constant node.
private func constantData(_ v: ValueID?, _ g: Graph) -> Tensor? {
  if let t = g.constant(v) { return t }
  guard let node = g.producer(of: v), node.opType == OpType.constant, OpType.isDefaultDomain(node.domain),
    let attribute = node.attributes.first
  else { return nil }
  switch attribute.value {
  case .tensor(let t): return t
  case .float(let x): return Tensor(floats: [x], shape: [])
  case .floats(let xs): return Tensor(floats: xs, shape: [xs.count])
  case .int(let x): return Tensor(int64s: [x], shape: [])
  case .ints(let xs): return Tensor(int64s: xs, shape: [xs.count])
  default: return nil
  }
}

/// The node of B that an unmatched node of A was merged into, if any: the node that now produces
/// what its readers read, when that node is new or is a changed match of one of its producers
/// (BatchNormalization into the Conv before it); else, when the node carries data of its own (a
/// constant input or an attribute), a changed match of one of its readers (Pad into the Conv after it).
private func mergeTarget(
  of x: NodeID, _ a: Graph, _ b: Graph, _ matcher: NodeMatcher, _ changes: [NodeID: GraphDiff.Change]
) -> NodeID? {
  let upstream = producersThroughRemoved(x, a, matcher)
  let (values, readers) = readsNow(x, a, b, matcher)
  for w in values {
    guard let y = b[w].producer else { continue }
    if let p = matcher.bToA[y] {
      if upstream.contains(p), changes[y]?.changesContent == true { return y }
    } else {
      return y
    }
  }
  let node = a[x]
  guard !node.attributes.isEmpty || node.inputs.contains(where: { constantData($0, a) != nil }) else { return nil }
  return readers.first { changes[$0]?.changesContent == true }
}

/// The nodes producing `x`'s inputs, looking through nodes of A that have no match.
private func producersThroughRemoved(_ x: NodeID, _ a: Graph, _ matcher: NodeMatcher) -> Set<NodeID> {
  var result = Set<NodeID>(), stack = [x], seen: Set<NodeID> = [x]
  while let n = stack.popLast() {
    for case let v? in a[n].inputs {
      guard let p = a[v].producer, seen.insert(p).inserted else { continue }
      result.insert(p)
      if matcher.aToB[p] == nil { stack.append(p) }
    }
  }
  return result
}

/// The values of B that the readers of `x`'s outputs read in their place, looking through
/// readers that have no match, and the matches of those readers in B; in a deterministic order.
private func readsNow(_ x: NodeID, _ a: Graph, _ b: Graph, _ matcher: NodeMatcher) -> ([ValueID], [NodeID]) {
  var values: [ValueID] = [], readers: [NodeID] = [], stack = [x], seen: Set<NodeID> = [x]
  while let n = stack.popLast() {
    for case let v? in a[n].outputs {
      for use in a[v].uses {
        switch use {
        case .input(let r, let k):
          if let s = matcher.aToB[r] {
            readers.append(s)
            if let w = b[s].input(k) { values.append(w) }
          } else if seen.insert(r).inserted {
            stack.append(r)
          }
        case .graphOutput(let i):
          if i < b.outputs.count { values.append(b.outputs[i]) }
        case .capture: break
        }
      }
    }
  }
  return (values, readers)
}

private func portChanges(_ a: Graph, _ b: Graph) -> [GraphDiff.PortChange] {
  func ports(_ g: Graph, _ ids: [ValueID]) -> [(String, String)] {
    ids.filter { g.constant($0) == nil }.map { (g[$0].name, GraphDiff.typeText(g[$0].type)) }
  }
  var result: [GraphDiff.PortChange] = []
  for (kind, pa, pb) in [("input", ports(a, a.inputs), ports(b, b.inputs)), ("output", ports(a, a.outputs), ports(b, b.outputs))] {
    let tb = Dictionary(pb, uniquingKeysWith: { x, _ in x }), ta = Dictionary(pa, uniquingKeysWith: { x, _ in x })
    for (name, type) in pa where tb[name] != type {
      result.append(.init(kind: kind, name: name, before: type, after: tb[name]))
    }
    for (name, type) in pb where ta[name] == nil {
      result.append(.init(kind: kind, name: name, before: nil, after: type))
    }
  }
  return result
}

// MARK: Text of nodes, types and attributes

extension GraphDiff.NodeRef {
  /// The node as reports name it; an op type outside the default domain as `domain::Op`.
  public init(_ node: Node, in g: Graph) {
    name = node.name
    opType = OpType.isDefaultDomain(node.domain) ? node.opType : "\(node.domain)::\(node.opType)"
    output = node.outputs.first.flatMap { $0 }.map { g[$0].name } ?? ""
  }
}

extension GraphDiff {
  /// `float[N,3,224,224]`, `float` for a scalar, `?` when unknown.
  public static func typeText(_ type: ValueType?) -> String {
    guard let type else { return "?" }
    switch type {
    case .tensor(let dtype, let shape):
      guard let shape else { return "\(dtype)[]" }
      return shape.isEmpty ? "\(dtype)" : "\(dtype)[\(shape.map(\.description).joined(separator: ","))]"
    case .sparseTensor(let dtype, let shape): return "sparse_tensor(\(typeText(.tensor(dtype, shape: shape))))"
    case .sequence(let element): return "seq(\(element.map { typeText($0) } ?? ""))"
    case .optional(let element): return "optional(\(element.map { typeText($0) } ?? ""))"
    case .map(let key, let value): return "map(\(key), \(value.map { typeText($0) } ?? ""))"
    case .opaque(let domain, let name): return "opaque(\(domain), \(name))"
    }
  }

  public static func tensorTypeText(_ t: Tensor) -> String {
    t.shape.isEmpty ? "\(t.dtype)" : "\(t.dtype)[\(t.shape.map(String.init).joined(separator: ","))]"
  }

  /// A tensor's type and, for at most 8 elements, its values; otherwise its digest.
  private static func tensorText(_ t: Tensor) -> String {
    if t.elementCount <= 8, let values = t.doubles {
      return tensorTypeText(t) + " {" + values.map(numberText).joined(separator: ",") + "}"
    }
    return tensorTypeText(t) + " #" + String(t.digest, radix: 16)
  }

  private static func numberText(_ x: Double) -> String {
    x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
  }

  private static func bytesText(_ s: [UInt8]) -> String {
    "\"" + String(String(decoding: s, as: UTF8.self).flatMap { $0 == "\"" ? ["\\", "\""] : [$0] }) + "\""
  }

  /// An attribute's value as the diff prints it: `[0,0,0,0]`, `0.5`, `"NOTSET"`.
  public static func attributeText(_ attribute: Attribute) -> String {
    if let ref = attribute.refAttrName { return "@\(ref)" }
    switch attribute.value {
    case .float(let f): return "\(f)"
    case .int(let i): return "\(i)"
    case .string(let s): return bytesText(s)
    case .tensor(let t): return tensorText(t)
    case .graph(let g): return "graph \(g.name) (\(g.nodeCount) nodes)"
    case .sparseTensor(let p): return "sparse_tensor (\(p.bytes.count) bytes)"
    case .type(let t): return typeText(t)
    case .floats(let fs): return "[" + fs.map { "\($0)" }.joined(separator: ",") + "]"
    case .ints(let xs): return "[" + xs.map(String.init).joined(separator: ",") + "]"
    case .strings(let ss): return "[" + ss.map(bytesText).joined(separator: ",") + "]"
    case .tensors(let ts): return "[" + ts.map(tensorText).joined(separator: ", ") + "]"
    case .graphs(let gs): return "[" + gs.map { "graph \($0.name)" }.joined(separator: ", ") + "]"
    case .sparseTensors(let ps): return "[\(ps.count) sparse tensors]"
    case .types(let ts): return "[" + ts.map { typeText($0) }.joined(separator: ", ") + "]"
    case .reference(let code): return "reference(\(code))"
    }
  }

  /// What makes two attributes equal: their text, with tensors by full content and subgraphs by
  /// their whole textual form.
  fileprivate static func attributeKey(_ attribute: Attribute) -> String {
    switch attribute.value {
    case .tensor(let t): return "tensor " + tensorTypeText(t) + " " + String(t.digest, radix: 16)
    case .tensors(let ts): return "tensors " + ts.map { tensorTypeText($0) + String($0.digest, radix: 16) }.joined(separator: ",")
    case .graph(let g): return "graph " + g.text()
    case .graphs(let gs): return "graphs " + gs.map { $0.text() }.joined(separator: "\n")
    case .sparseTensor(let p): return "sparse " + p.bytes.map(String.init).joined(separator: ",")
    default: return attributeText(attribute)
    }
  }
}
