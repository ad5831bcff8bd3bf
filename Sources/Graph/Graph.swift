/// Identifies a value of one graph.
public struct ValueID: Hashable, Comparable, Sendable, CustomStringConvertible {
  public let index: Int
  init(_ index: Int) { self.index = index }
  public static func < (a: ValueID, b: ValueID) -> Bool { a.index < b.index }
  public var description: String { "%\(index)" }
}

/// Identifies a node of one graph.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible {
  public let index: Int
  init(_ index: Int) { self.index = index }
  public static func < (a: NodeID, b: NodeID) -> Bool { a.index < b.index }
  public var description: String { "#\(index)" }
}

/// One place a value is read.
public enum Use: Hashable, Sendable {
  /// Input slot `Int` of a node.
  case input(NodeID, Int)
  /// Position `Int` in the graph's outputs: the caller sees the value, so it counts as a use.
  case graphOutput(Int)
  /// Read by name from inside a subgraph attribute of the node (If, Loop, Scan).
  case capture(NodeID)
}

/// An SSA value: defined once, read by the uses in its use list.
public struct Value: Sendable {
  public enum Definition: Sendable {
    /// A graph input; `default` is the initializer of the same name, which a caller may override.
    case input(default: Tensor?)
    /// A constant initializer.
    case initializer(Tensor)
    /// Output `output` of a node.
    case node(NodeID, output: Int)
    /// In a subgraph: a value of an enclosing graph, read by name.
    case outerScope
  }

  public let id: ValueID
  public internal(set) var name: String
  /// The declared or inferred type; nil when unknown.
  public var type: ValueType?
  /// The `doc_string` of its `ValueInfoProto`.
  public var docString: String = ""
  public var metadataProps: [MetadataEntry] = []
  public internal(set) var definition: Definition
  /// Every place the value is read, graph outputs and subgraph captures included.
  public internal(set) var uses: [Use] = []

  /// The producing node, for node outputs.
  public var producer: NodeID? {
    if case .node(let node, _) = definition { return node }
    return nil
  }
}

/// An operator application.
public struct Node: Sendable {
  public let id: NodeID
  public var name: String
  public var opType: String
  /// The operator set domain; "" is the default ONNX domain.
  public var domain: String
  public var overload: String = ""
  public var docString: String = ""
  public var metadataProps: [MetadataEntry] = []
  /// Inputs by position; nil is an omitted optional input.
  public internal(set) var inputs: [ValueID?]
  /// Outputs by position; nil is an omitted optional output.
  public internal(set) var outputs: [ValueID?]
  public internal(set) var attributes: [Attribute]
  /// Values of this graph read by name from inside the node's subgraphs.
  public internal(set) var captures: [ValueID] = []

  public func attribute(_ name: String) -> Attribute? {
    attributes.first { $0.name == name }
  }

  /// Input `i`, or nil when it is omitted or past the end.
  public func input(_ i: Int) -> ValueID? {
    i < inputs.count ? inputs[i] : nil
  }

  /// Output `i`, or nil when it is omitted or past the end.
  public func output(_ i: Int) -> ValueID? {
    i < outputs.count ? outputs[i] : nil
  }
}

/// Errors raised when a graph is built from names that do not fit together.
public enum GraphError: Error, Equatable, CustomStringConvertible {
  case duplicateName(String)
  case unknownValue(String)

  public var description: String {
    switch self {
    case .duplicateName(let name): return "value '\(name)' is defined more than once"
    case .unknownValue(let name): return "value '\(name)' is read but not produced"
    }
  }
}

/// A computation graph in SSA form: ONNX's `GraphProto`.
///
/// Values and nodes live in slots indexed by their IDs; removing one leaves its slot empty so that
/// IDs stay stable. Every mutation goes through the methods below, which keep each value's use
/// list equal to the places it is read. This file is the only one that edits use lists.
public struct Graph: Sendable {
  public var name: String
  public var docString: String = ""
  public var metadataProps: [MetadataEntry] = []
  /// Graph-level fields rebirth carries but does not interpret (quantization annotations).
  public var opaqueQuantizationAnnotations: [OpaqueProto] = []

  public private(set) var inputs: [ValueID] = []
  public private(set) var outputs: [ValueID] = []
  private var valueSlots: [Value?] = []
  private var nodeSlots: [Node?] = []
  private var names: [String: ValueID] = [:]
  private var nodeCountCache = 0

  public init(name: String = "") { self.name = name }

  // MARK: Queries

  public subscript(value: ValueID) -> Value {
    guard let v = valueSlots[value.index] else { preconditionFailure("\(value) was removed") }
    return v
  }

  public subscript(node: NodeID) -> Node {
    guard let n = nodeSlots[node.index] else { preconditionFailure("\(node) was removed") }
    return n
  }

  public func contains(_ value: ValueID) -> Bool {
    value.index >= 0 && value.index < valueSlots.count && valueSlots[value.index] != nil
  }

  public func contains(_ node: NodeID) -> Bool {
    node.index >= 0 && node.index < nodeSlots.count && nodeSlots[node.index] != nil
  }

  /// The value with this name, if any.
  public func value(named name: String) -> ValueID? { names[name] }

  /// Live nodes in ID order (import order for imported graphs).
  public var nodeIDs: [NodeID] {
    nodeSlots.indices.compactMap { nodeSlots[$0] == nil ? nil : NodeID($0) }
  }

  /// Live values in ID order.
  public var valueIDs: [ValueID] {
    valueSlots.indices.compactMap { valueSlots[$0] == nil ? nil : ValueID($0) }
  }

  public var nodeCount: Int { nodeCountCache }

  /// Initializers, including those that are also graph inputs, in ID order.
  public var initializers: [ValueID] {
    valueIDs.filter {
      switch self[$0].definition {
      case .initializer: return true
      case .input(let d): return d != nil
      default: return false
      }
    }
  }

  /// Values read by name from an enclosing graph, in ID order.
  public var outerReferences: [ValueID] {
    valueIDs.filter { if case .outerScope = self[$0].definition { return true } else { return false } }
  }

  /// The node that produces `value`, if a node does.
  public func producer(of value: ValueID?) -> Node? {
    guard let value, let node = self[value].producer else { return nil }
    return self[node]
  }

  public func uses(of value: ValueID) -> [Use] { self[value].uses }

  /// The constant data of `value` when it is an initializer a caller cannot override: nil for graph
  /// inputs (even with a default), node outputs and outer references.
  public func constant(_ value: ValueID?) -> Tensor? {
    guard let value, case .initializer(let tensor) = self[value].definition else { return nil }
    return tensor
  }

  public func isGraphOutput(_ value: ValueID) -> Bool {
    self[value].uses.contains { if case .graphOutput = $0 { return true } else { return false } }
  }

  /// A name not yet used in this graph, derived from `base`.
  public func uniqueName(_ base: String) -> String {
    if names[base] == nil { return base }
    var i = 1
    while names["\(base)_\(i)"] != nil { i += 1 }
    return "\(base)_\(i)"
  }

  // MARK: Adding

  private mutating func newValue(_ name: String, _ type: ValueType?, _ definition: Value.Definition) throws(GraphError) -> ValueID {
    guard names[name] == nil else { throw .duplicateName(name) }
    let id = ValueID(valueSlots.count)
    valueSlots.append(Value(id: id, name: name, type: type, definition: definition))
    names[name] = id
    return id
  }

  /// Appends a graph input; `default` is an initializer of the same name.
  @discardableResult
  public mutating func addInput(name: String, type: ValueType?, default defaultValue: Tensor? = nil) throws(GraphError) -> ValueID {
    let id = try newValue(name, type, .input(default: defaultValue))
    inputs.append(id)
    return id
  }

  /// Adds a constant initializer.
  @discardableResult
  public mutating func addInitializer(name: String, _ tensor: Tensor, type: ValueType? = nil) throws(GraphError) -> ValueID {
    let t = type ?? .tensor(tensor.dtype, shape: tensor.shape.map { .value($0) })
    return try newValue(name, t, .initializer(tensor))
  }

  /// Declares a value of an enclosing graph that this (sub)graph reads by name.
  @discardableResult
  public mutating func addOuterReference(name: String, type: ValueType? = nil) throws(GraphError) -> ValueID {
    try newValue(name, type, .outerScope)
  }

  /// Adds a node; its outputs are new values with the given names ("" for an omitted output).
  /// Subgraph attributes' outer references are resolved in this graph as captures; a name this
  /// graph does not define becomes an outer reference of this graph.
  @discardableResult
  public mutating func addNode(
    opType: String, domain: String = "", name: String = "", inputs: [ValueID?], outputs outputNames: [String],
    attributes: [Attribute] = []
  ) throws(GraphError) -> NodeID {
    for input in inputs { if let input, !contains(input) { throw .unknownValue("\(input)") } }
    var seen = Set<String>()
    for n in outputNames where !n.isEmpty {
      guard names[n] == nil, seen.insert(n).inserted else { throw .duplicateName(n) }
    }
    let id = NodeID(nodeSlots.count)
    var outputs: [ValueID?] = []
    for (i, n) in outputNames.enumerated() {
      outputs.append(n.isEmpty ? nil : try newValue(n, nil, .node(id, output: i)))
    }
    nodeSlots.append(Node(id: id, name: name, opType: opType, domain: domain, inputs: inputs, outputs: outputs, attributes: []))
    nodeCountCache += 1
    for (i, input) in inputs.enumerated() { if let input { valueSlots[input.index]!.uses.append(.input(id, i)) } }
    try setAttributes(of: id, attributes)
    return id
  }

  /// Appends `value` to the graph's outputs.
  public mutating func addOutput(_ value: ValueID) {
    valueSlots[value.index]!.uses.append(.graphOutput(outputs.count))
    outputs.append(value)
  }

  // MARK: Editing

  /// Points input slot `slot` of `node` at `value` (nil omits it); the slot may be one past the end.
  public mutating func setInput(_ slot: Int, of node: NodeID, to value: ValueID?) {
    precondition(slot >= 0 && slot <= self[node].inputs.count, "input slot \(slot) out of range")
    if slot < self[node].inputs.count, let old = self[node].inputs[slot] {
      removeUse(.input(node, slot), from: old)
    }
    if slot == self[node].inputs.count { nodeSlots[node.index]!.inputs.append(nil) }
    nodeSlots[node.index]!.inputs[slot] = value
    if let value { valueSlots[value.index]!.uses.append(.input(node, slot)) }
  }

  /// Replaces all of `node`'s inputs.
  public mutating func setInputs(of node: NodeID, _ values: [ValueID?]) {
    for (slot, old) in self[node].inputs.enumerated() { if let old { removeUse(.input(node, slot), from: old) } }
    nodeSlots[node.index]!.inputs = values
    for (slot, v) in values.enumerated() { if let v { valueSlots[v.index]!.uses.append(.input(node, slot)) } }
  }

  /// Replaces `node`'s attributes and recomputes the values its subgraphs capture.
  public mutating func setAttributes(of node: NodeID, _ attributes: [Attribute]) throws(GraphError) {
    for old in self[node].captures { removeUse(.capture(node), from: old) }
    var captured: [ValueID] = []
    var seen = Set<String>()
    for attribute in attributes {
      for subgraph in attribute.subgraphs {
        for ref in subgraph.outerReferences {
          let refName = subgraph[ref].name
          guard seen.insert(refName).inserted else { continue }
          if let v = names[refName] {
            captured.append(v)
          } else {
            captured.append(try addOuterReference(name: refName, type: subgraph[ref].type))
          }
        }
      }
    }
    nodeSlots[node.index]!.attributes = attributes
    nodeSlots[node.index]!.captures = captured
    for v in captured { valueSlots[v.index]!.uses.append(.capture(node)) }
  }

  /// Edits fields of a node that do not affect use lists (name, op type, domain, doc string).
  public mutating func updateNode(_ node: NodeID, _ edit: (inout Node) -> Void) {
    var n = self[node]
    let (inputs, outputs, attributeCount, id) = (n.inputs, n.outputs, n.attributes.count, n.id)
    edit(&n)
    precondition(n.inputs == inputs && n.outputs == outputs && n.attributes.count == attributeCount && n.id == id,
      "updateNode must not change inputs, outputs or attributes")
    nodeSlots[node.index] = n
  }

  /// Sets a value's type or doc string.
  public mutating func updateValue(_ value: ValueID, _ edit: (inout Value) -> Void) {
    var v = self[value]
    let (name, id, useCount) = (v.name, v.id, v.uses.count)
    edit(&v)
    precondition(v.name == name && v.id == id && v.uses.count == useCount, "updateValue must not change name or uses")
    valueSlots[value.index] = v
  }

  /// Replaces the data of an initializer (or of a graph input's default).
  public mutating func setConstant(_ value: ValueID, _ tensor: Tensor) {
    switch self[value].definition {
    case .initializer: valueSlots[value.index]!.definition = .initializer(tensor)
    case .input: valueSlots[value.index]!.definition = .input(default: tensor)
    default: preconditionFailure("\(value) is not an initializer")
    }
  }

  /// Points graph output `position` at `value`.
  public mutating func setOutput(_ position: Int, to value: ValueID) {
    removeUse(.graphOutput(position), from: outputs[position])
    outputs[position] = value
    valueSlots[value.index]!.uses.append(.graphOutput(position))
  }

  /// Renames a value, and the outer references to it inside captured subgraphs.
  public mutating func rename(_ value: ValueID, to newName: String) throws(GraphError) {
    let oldName = self[value].name
    guard oldName != newName else { return }
    guard names[newName] == nil else { throw .duplicateName(newName) }
    names[oldName] = nil
    names[newName] = value
    valueSlots[value.index]!.name = newName
    for case .capture(let node) in self[value].uses {
      renameOuterReference(in: node, from: oldName, to: newName)
    }
  }

  /// Makes every reader of `old` read `new` instead.
  ///
  /// Graph outputs keep their names, which are part of the graph's signature: when `old` is a graph
  /// output and `new` is a node output that is not one, `new` takes `old`'s name (and `old` gets a
  /// fresh one); otherwise an Identity node gives the output its name.
  public mutating func replaceAllUses(of old: ValueID, with new: ValueID) {
    precondition(old != new, "replacing \(old) with itself")
    for use in self[old].uses {
      switch use {
      case .input(let node, let slot): setInput(slot, of: node, to: new)
      case .capture(let node):
        renameOuterReference(in: node, from: self[old].name, to: self[new].name)
        removeUse(use, from: old)
        // A node that captured both values keeps `new` once.
        var seen = Set<ValueID>()
        nodeSlots[node.index]!.captures = self[node].captures.map { $0 == old ? new : $0 }.filter { seen.insert($0).inserted }
        if !self[new].uses.contains(.capture(node)) { valueSlots[new.index]!.uses.append(.capture(node)) }
      case .graphOutput: break
      }
    }
    let outputPositions = self[old].uses.compactMap { use -> Int? in
      if case .graphOutput(let p) = use { return p } else { return nil }
    }
    guard !outputPositions.isEmpty else { return }
    let outputName = self[old].name
    if outputPositions.count == 1, self[new].producer != nil, !isGraphOutput(new) {
      let type = self[new].type ?? self[old].type
      try! rename(old, to: uniqueName(outputName + "_replaced"))
      try! rename(new, to: outputName)
      valueSlots[new.index]!.type = type
      setOutput(outputPositions[0], to: new)
    } else {
      let type = self[old].type
      try! rename(old, to: uniqueName(outputName + "_replaced"))
      let identity = try! addNode(opType: "Identity", name: uniqueName(outputName + "_identity"), inputs: [new], outputs: [outputName])
      let named = self[identity].outputs[0]!
      valueSlots[named.index]!.type = type
      for p in outputPositions { setOutput(p, to: named) }
    }
  }

  /// Removes a node whose outputs nobody reads; its output values go with it.
  public mutating func removeNode(_ node: NodeID) {
    let n = self[node]
    for output in n.outputs.compactMap({ $0 }) {
      precondition(self[output].uses.isEmpty, "removing \(node) whose output '\(self[output].name)' is still used")
    }
    for (slot, input) in n.inputs.enumerated() { if let input { removeUse(.input(node, slot), from: input) } }
    for v in n.captures { removeUse(.capture(node), from: v) }
    for output in n.outputs.compactMap({ $0 }) { dropValue(output) }
    nodeSlots[node.index] = nil
    nodeCountCache -= 1
  }

  /// Removes an unused initializer or outer reference, or an unused graph input.
  public mutating func removeValue(_ value: ValueID) {
    precondition(self[value].uses.isEmpty, "removing '\(self[value].name)', which is still used")
    precondition(self[value].producer == nil, "remove the producer of '\(self[value].name)' instead")
    inputs.removeAll { $0 == value }
    dropValue(value)
  }

  // MARK: Private

  private mutating func dropValue(_ value: ValueID) {
    names[self[value].name] = nil
    valueSlots[value.index] = nil
  }

  private mutating func removeUse(_ use: Use, from value: ValueID) {
    guard let i = valueSlots[value.index]!.uses.firstIndex(of: use) else {
      preconditionFailure("use list of '\(self[value].name)' lacks \(use)")
    }
    valueSlots[value.index]!.uses.remove(at: i)
  }

  private mutating func renameOuterReference(in node: NodeID, from oldName: String, to newName: String) {
    var attributes = self[node].attributes
    for i in attributes.indices {
      switch attributes[i].value {
      case .graph(var g):
        g.renameOuterReference(from: oldName, to: newName)
        attributes[i].value = .graph(g)
      case .graphs(var gs):
        for j in gs.indices { gs[j].renameOuterReference(from: oldName, to: newName) }
        attributes[i].value = .graphs(gs)
      default: break
      }
    }
    nodeSlots[node.index]!.attributes = attributes
  }

  /// Renames this subgraph's outer reference `oldName`, merging it into `newName` when that exists.
  mutating func renameOuterReference(from oldName: String, to newName: String) {
    guard let ref = names[oldName], case .outerScope = self[ref].definition else { return }
    if let existing = names[newName] {
      replaceAllUses(of: ref, with: existing)
      removeValue(ref)
    } else {
      try! rename(ref, to: newName)
    }
  }
}
