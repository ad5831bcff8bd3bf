import Graph

/// The only way a pass mutates a model.
///
/// It keeps use lists right (every edit goes through ``Graph``'s own mutators), names new nodes,
/// values and weights predictably (from a base the pattern gives, made unique), and logs each
/// change (its pattern, the nodes removed, created and modified, the weights it made) for the
/// report. A change is a transaction: ``beginChange(_:)`` snapshots the model, and a rewrite that
/// throws is rolled back to that snapshot, so a pass can never leave a half-rewritten graph.
public struct Rewriter: Sendable {
  public private(set) var model: Model
  /// The model's graph, as a value: what patterns match against.
  public var graph: Graph { model.graph }
  /// The version of the default ONNX domain the model imports (0 when it imports none).
  public let opset: Int
  /// Every committed change, in order.
  public private(set) var changes: [Change] = []
  /// Rewrites that failed and were rolled back, as one-line messages.
  public private(set) var warnings: [String] = []
  /// The pass whose changes are being logged.
  public var passName = ""
  /// How many more changes may be committed (nil: no limit); `--max-rewrites` sets it.
  public var remainingRewrites: Int?
  /// Whether changes count against ``remainingRewrites`` (the pipeline's dead-code cleanup does not).
  public var isBudgeted = true
  /// The model as the pipeline received it: the reference approximate passes measure against.
  public let original: Model
  /// Calibration data and budgets for the approximate passes.
  public var approximation = ApproximationSettings()
  /// Approximate rewrites that were measured and undone (over budget, or no gain), with why.
  public private(set) var skipped: [Change] = []

  private var pending: Change?
  private var snapshot: Model?

  public init(model: Model, maxRewrites: Int? = nil) {
    self.model = model
    self.original = model
    self.opset = Int(model.onnxOpsetVersion ?? 0)
    self.remainingRewrites = maxRewrites
  }

  /// Whether another change may be made.
  public var canRewrite: Bool { !isBudgeted || (remainingRewrites ?? 1) > 0 }

  // MARK: Transactions

  /// Starts a change made by `pattern`.
  public mutating func beginChange(_ pattern: String) {
    precondition(pending == nil, "change '\(pending!.pattern)' is still open")
    pending = Change(pass: passName, pattern: pattern)
    snapshot = model
  }

  /// Ends the open change, logging it with `description`.
  public mutating func commitChange(_ description: String) {
    guard var change = pending else { preconditionFailure("no open change") }
    change.description = description
    // A node made and erased within one change was scaffolding, not news.
    let made = Set(change.created.map(\.name)), erased = Set(change.removed.map(\.name))
    change.created.removeAll { erased.contains($0.name) }
    change.removed.removeAll { made.contains($0.name) }
    change.modified.removeAll { erased.contains($0.name) || made.contains($0.name) }
    changes.append(change)
    pending = nil
    snapshot = nil
    if isBudgeted, let left = remainingRewrites { remainingRewrites = left - 1 }
  }

  /// Abandons the open change, restoring the model as it was when the change began.
  public mutating func rollBack(because reason: String) {
    guard let before = snapshot, let change = pending else { preconditionFailure("no open change") }
    model = before
    warnings.append("\(change.pass): \(change.pattern): \(reason); left unchanged")
    pending = nil
    snapshot = nil
  }

  /// Abandons the open change, restoring the model, and reports it as skipped with `reason`
  /// (e.g. "output error 0.012 over the budget 0.01") and its measurements.
  public mutating func skipChange(_ description: String, reason: String, metrics: [String: Double] = [:]) {
    guard let before = snapshot, var change = pending else { preconditionFailure("no open change") }
    model = before
    change.description = "\(description): skipped, \(reason)"
    change.metrics = metrics
    skipped.append(change)
    pending = nil
    snapshot = nil
  }

  /// Adds measurements to the open change (for approximate rewrites: "output_error", "rank",
  /// "params_before", "params_after", "weight_error", …); the report prints them.
  public mutating func recordMetrics(_ metrics: [String: Double]) {
    pending?.metrics.merge(metrics) { _, new in new }
  }

  /// The open change, as logged so far.
  public var pendingChange: Change? { pending }

  /// Abandons the open change without a warning (a pass that found nothing to do).
  public mutating func discardChange() {
    guard let before = snapshot, pending != nil else { preconditionFailure("no open change") }
    model = before
    pending = nil
    snapshot = nil
  }

  // MARK: Adding

  /// Adds a constant named after `base` (made unique) and returns it.
  public mutating func addInitializer(_ base: String, _ tensor: Tensor) -> ValueID {
    let name = model.graph.uniqueName(base)
    let id = try! model.graph.addInitializer(name: name, tensor)
    pending?.weights.append(WeightSummary(name: name, dtype: "\(tensor.dtype)", shape: tensor.shape))
    return id
  }

  /// Adds a node named after `name` (made unique); its outputs are named `outputNames` (made
  /// unique), or after the node when not given. Returns the node.
  @discardableResult
  public mutating func addNode(
    _ opType: String, name: String, inputs: [ValueID?], outputs outputNames: [String]? = nil, outputCount: Int = 1,
    attributes: [Attribute] = [], domain: String = ""
  ) throws -> NodeID {
    let nodeName = uniqueNodeName(name)
    var names: [String] = []
    for (i, base) in (outputNames ?? (0..<outputCount).map { $0 == 0 ? nodeName : "\(nodeName)_\($0)" }).enumerated() {
      var unique = base.isEmpty ? "" : model.graph.uniqueName(base)
      while !unique.isEmpty && names.contains(unique) { unique = model.graph.uniqueName("\(base)_\(i)") }
      names.append(unique)
    }
    let id = try model.graph.addNode(
      opType: opType, domain: domain, name: nodeName, inputs: inputs, outputs: names, attributes: attributes)
    let summary = NodeSummary(graph[id], in: graph)
    pending?.created.append(summary)
    return id
  }

  // MARK: Editing

  public mutating func setInput(_ slot: Int, of node: NodeID, to value: ValueID?) {
    noteModified(node)
    model.graph.setInput(slot, of: node, to: value)
  }

  public mutating func setInputs(of node: NodeID, _ values: [ValueID?]) {
    noteModified(node)
    model.graph.setInputs(of: node, values)
  }

  public mutating func setAttributes(of node: NodeID, _ attributes: [Attribute]) throws {
    noteModified(node)
    try model.graph.setAttributes(of: node, attributes)
  }

  /// Sets (or adds) one attribute of `node`.
  public mutating func setAttribute(_ attribute: Attribute, of node: NodeID) throws {
    var attributes = graph[node].attributes.filter { $0.name != attribute.name }
    attributes.append(attribute)
    attributes.sort { $0.name < $1.name }
    try setAttributes(of: node, attributes)
  }

  /// Removes attribute `name` of `node`, if present.
  public mutating func removeAttribute(_ name: String, of node: NodeID) throws {
    guard graph[node].attribute(name) != nil else { return }
    try setAttributes(of: node, graph[node].attributes.filter { $0.name != name })
  }

  /// Changes a node's op type (an edit that keeps its inputs and outputs).
  public mutating func setOpType(_ opType: String, of node: NodeID) {
    noteModified(node)
    model.graph.updateNode(node) { $0.opType = opType }
  }

  /// Renames `value` to `name` when that name is free (nothing happens otherwise); a weight the
  /// open change made is reported under its new name. Graph outputs keep their names.
  public mutating func rename(_ value: ValueID, to name: String) {
    let old = graph[value].name
    guard old != name, graph.value(named: name) == nil, !graph.isGraphOutput(value) else { return }
    do { try model.graph.rename(value, to: name) } catch { return }
    if let index = pending?.weights.firstIndex(where: { $0.name == old }) { pending!.weights[index].name = name }
  }

  /// Infers the types and shapes of the values it can (not a logged change: it only records what
  /// the graph already computes).
  public mutating func inferShapes() {
    model.inferShapes()
  }

  /// Sets the type recorded for `value` (nil: unknown).
  public mutating func setType(_ type: ValueType?, of value: ValueID) {
    model.graph.updateValue(value) { $0.type = type }
  }

  /// Makes every reader of `old` read `new`; graph outputs keep their names (see
  /// ``Graph/replaceAllUses(of:with:)``).
  public mutating func replaceAllUses(of old: ValueID, with new: ValueID) {
    for case .input(let node, _) in graph.uses(of: old) { noteModified(node) }
    let countBefore = graph.nodeCount
    model.graph.replaceAllUses(of: old, with: new)
    if graph.nodeCount > countBefore, let added = graph.nodeIDs.last {
      let summary = NodeSummary(graph[added], in: graph)
      pending?.created.append(summary)
    }
  }

  /// Removes `node`, whose outputs must be unused.
  public mutating func erase(_ node: NodeID) {
    let summary = NodeSummary(graph[node], in: graph)
    pending?.removed.append(summary)
    model.graph.removeNode(node)
  }

  /// Removes an unused initializer, outer reference or graph input.
  public mutating func removeValue(_ value: ValueID) {
    let name = graph[value].name
    pending?.removedValues.append(name)
    model.graph.removeValue(value)
  }

  /// Edits model-level fields (opset imports, functions); the graph must be left alone.
  public mutating func editModel(_ edit: (inout Model) -> Void) {
    let nodes = model.graph.nodeCount
    edit(&model)
    precondition(model.graph.nodeCount == nodes, "editModel must not change the graph")
  }

  // MARK: Private

  private mutating func noteModified(_ node: NodeID) {
    guard pending != nil, graph.contains(node) else { return }
    let name = graph[node].name
    if !pending!.modified.contains(where: { $0.name == name }) {
      pending!.modified.append(NodeSummary(graph[node], in: graph))
    }
  }

  private func uniqueNodeName(_ base: String) -> String {
    var used = Set<String>()
    for node in graph.nodeIDs { used.insert(graph[node].name) }
    // Node names share ONNX's textual namespace with values in reports; keep them apart too.
    if !used.contains(base) && graph.value(named: base) == nil { return base }
    var i = 1
    while used.contains("\(base)_\(i)") || graph.value(named: "\(base)_\(i)") != nil { i += 1 }
    return "\(base)_\(i)"
  }
}

/// One change a pass made: what the report prints, with its provenance.
public struct Change: Sendable, Codable, Equatable {
  public var pass: String
  public var pattern: String
  /// What happened, in words: "BatchNormalization bn3 folded into Conv conv3".
  public var description = ""
  public var removed: [NodeSummary] = []
  public var created: [NodeSummary] = []
  public var modified: [NodeSummary] = []
  /// The new constants the change made, with their shapes.
  public var weights: [WeightSummary] = []
  /// Initializers and inputs it removed.
  public var removedValues: [String] = []
  /// Measurements of an approximate change (its output error, rank, parameters…), by name.
  public var metrics: [String: Double] = [:]

  public init(pass: String, pattern: String) {
    self.pass = pass
    self.pattern = pattern
  }
}

/// A node as the report names it.
public struct NodeSummary: Sendable, Codable, Equatable {
  public var name: String
  public var opType: String
  /// Its first output's name: how an unnamed node is told apart.
  public var output: String

  public init(_ node: Node, in graph: Graph) {
    name = node.name
    opType = node.opType
    output = node.outputs.first.flatMap { $0 }.map { graph[$0].name } ?? ""
  }

  /// "Conv conv3", or "Identity →x1" for an unnamed node.
  public var label: String {
    "\(opType) " + (name.isEmpty ? "→\(output)" : name)
  }
}

extension Graph {
  /// A node as reports name it: "Conv conv3", or "Identity →x1" when it has no name.
  public func label(_ node: Node) -> String { NodeSummary(node, in: self).label }
}

/// A constant a change made.
public struct WeightSummary: Sendable, Codable, Equatable {
  public var name: String
  public var dtype: String
  public var shape: [Int]
}
