// GraphProto → Graph: values, nodes in a topological order, and the names subgraphs read from
// the graphs around them.

import CProtobufC
import Graph
import ONNXProto

/// Where a list of nodes lives, which decides what a name no node or input defines means.
enum GraphScope {
  /// The model's graph: such a name is an error.
  case main
  /// A subgraph of If, Loop, Scan...: such a name is a value of an enclosing graph.
  case subgraph
  /// A function body: such a name is an error.
  case function
}

extension ModelReader {
  func graph(_ g: UnsafeMutablePointer<Onnx__GraphProto>, scope: GraphScope) throws(ImportError) -> Graph {
    let p = g.pointee
    var graph = Graph(name: text(p.name))
    graph.docString = text(p.doc_string)
    graph.metadataProps = metadata(p.metadata_props, p.n_metadata_props)
    graph.opaqueQuantizationAnnotations = messages(p.quantization_annotation, p.n_quantization_annotation).map {
      opaque($0)
    }
    let initializers = try self.initializers(of: p)
    var inputNames = Set<String>()
    for input in messages(p.input, p.n_input) {
      let name = text(input.pointee.name)
      guard !name.isEmpty else { throw fail("graph '\(graph.name)' has an input with an empty name") }
      let defaultValue = initializers.tensors[name]
      let id = try add { () throws(GraphError) in
        try graph.addInput(name: name, type: valueType(input.pointee.type), default: defaultValue)
      }
      inputNames.insert(name)
      describe(id, in: &graph, from: input, setType: false)
    }
    for name in initializers.order where !inputNames.contains(name) {
      guard let tensor = initializers.tensors[name] else { continue }
      try add { () throws(GraphError) in try graph.addInitializer(name: name, tensor) }
    }
    try addNodes(messages(p.node, p.n_node), to: &graph, scope: scope)
    // Before the outputs, so that an output's own declaration wins over a value_info entry.
    applyValueInfo(messages(p.value_info, p.n_value_info), to: &graph)
    for output in messages(p.output, p.n_output) {
      let name = text(output.pointee.name)
      var id = graph.value(named: name)
      if id == nil, scope == .subgraph, !name.isEmpty {
        id = try add { () throws(GraphError) in try graph.addOuterReference(name: name) }
      }
      guard let id else {
        throw fail("graph output '\(name)' is not produced by any node, input or initializer")
      }
      if let conflict = initializerConflict(valueType(output.pointee.type), id, in: graph) {
        throw fail(
          "graph output '\(name)' is declared \(conflict.declared), but its initializer holds \(conflict.holds)")
      }
      describe(id, in: &graph, from: output, setType: true)
      graph.addOutput(id)
    }
    return graph
  }

  /// Initializers by name in file order; sparse ones made dense.
  private func initializers(
    of p: Onnx__GraphProto
  ) throws(ImportError) -> (order: [String], tensors: [String: Tensor]) {
    var order: [String] = []
    var tensors: [String: Tensor] = [:]
    func insert(_ name: String, _ tensor: Tensor) throws(ImportError) {
      guard !name.isEmpty else { throw fail("graph '\(text(p.name))' has an initializer with an empty name") }
      guard tensors[name] == nil else { throw fail("initializer '\(name)' is defined more than once") }
      order.append(name)
      tensors[name] = tensor
    }
    for t in messages(p.initializer, p.n_initializer) {
      let name = text(t.pointee.name)
      try insert(name, try tensor(t, "initializer '\(name)'"))
    }
    for s in messages(p.sparse_initializer, p.n_sparse_initializer) {
      let dense = try denseTensor(fromSparse: s)
      try insert(dense.name, dense.tensor)
    }
    return (order, tensors)
  }

  /// Copies a `ValueInfoProto`'s doc string, metadata and (when `setType` and present) type.
  private func describe(
    _ id: ValueID, in graph: inout Graph, from info: UnsafeMutablePointer<Onnx__ValueInfoProto>, setType: Bool
  ) {
    let type = setType ? valueType(info.pointee.type) : nil
    let docString = text(info.pointee.doc_string)
    let metadata = self.metadata(info.pointee.metadata_props, info.pointee.n_metadata_props)
    guard type != nil || !docString.isEmpty || !metadata.isEmpty else { return }
    graph.updateValue(id) { value in
      if let type { value.type = type }
      if !docString.isEmpty { value.docString = docString }
      if !metadata.isEmpty { value.metadataProps = metadata }
    }
  }

  /// Types and describes the values that `value_info` names; entries naming nothing are dropped,
  /// a graph input keeps the type its own declaration gave it, and an initializer keeps its
  /// data's type when the entry contradicts it.
  func applyValueInfo(_ infos: [UnsafeMutablePointer<Onnx__ValueInfoProto>], to graph: inout Graph) {
    let inputs = Set(graph.inputs)
    for info in infos {
      guard let id = graph.value(named: text(info.pointee.name)) else { continue }
      let typedInput = inputs.contains(id) && graph[id].type != nil
      let contradicts = initializerConflict(valueType(info.pointee.type), id, in: graph) != nil
      describe(id, in: &graph, from: info, setType: !typedInput && !contradicts)
    }
  }

  /// When `id` is an initializer and `type` is a tensor type its data does not have (another
  /// element type, rank or known extent: what `Graph.verify()` refuses), the two spelled out.
  private func initializerConflict(
    _ type: ValueType?, _ id: ValueID, in graph: Graph
  ) -> (declared: String, holds: String)? {
    guard case .initializer(let tensor) = graph[id].definition, case .tensor(let dtype, let shape)? = type else {
      return nil
    }
    let shapeDiffers =
      shape.map { dims in
        dims.count != tensor.shape.count
          || zip(dims, tensor.shape).contains { d, n in d.value.map { $0 != n } ?? false }
      } ?? false
    guard dtype != tensor.dtype || shapeDiffers else { return nil }
    let declared = shape.map { "\(dtype) [\($0.map(\.description).joined(separator: ", "))]" } ?? "\(dtype)"
    return (declared, "\(tensor.dtype) \(tensor.shape)")
  }

  // MARK: Nodes

  /// A node read from the file, not yet added to the graph.
  private struct PendingNode {
    let proto: UnsafeMutablePointer<Onnx__NodeProto>
    /// "node 'name' (Op)", for messages about what the node reads or defines.
    let label: String
    /// "Op 'name'", for lists of nodes.
    let shortLabel: String
    let inputs: [String]
    let outputs: [String]
    let attributes: [Attribute]
    /// Names the node reads: its inputs and what its subgraphs read from outside.
    let reads: [String]
  }

  /// Adds `protos` to `graph` in a topological order (file order when the file's is one).
  func addNodes(
    _ protos: [UnsafeMutablePointer<Onnx__NodeProto>], to graph: inout Graph, scope: GraphScope
  ) throws(ImportError) {
    var pending: [PendingNode] = []
    pending.reserveCapacity(protos.count)
    for (index, proto) in protos.enumerated() { pending.append(try read(proto, index: index)) }

    var producers: [String: Int] = [:]
    for (index, node) in pending.enumerated() {
      for name in node.outputs where !name.isEmpty {
        if let other = producers[name] {
          throw fail("value '\(name)' is defined more than once (by \(pending[other].label) and \(node.label))")
        }
        if graph.value(named: name) != nil {
          throw fail("value '\(name)' is defined more than once (by an input or initializer and by \(node.label))")
        }
        producers[name] = index
      }
    }
    var dependencies: [[Int]] = []
    dependencies.reserveCapacity(pending.count)
    for node in pending {
      var producedBy: [Int] = []
      for name in node.reads {
        if let producer = producers[name] {
          producedBy.append(producer)
        } else if graph.value(named: name) == nil, scope != .subgraph {
          throw fail("\(node.label) reads '\(name)', which is not produced by any node, input or initializer")
        }
      }
      dependencies.append(producedBy)
    }
    guard let order = topologicalOrder(dependencies) else {
      let names = nodesOnCycles(dependencies).prefix(5).map { pending[$0].shortLabel }.joined(separator: ", ")
      throw fail("graph '\(graph.name)' has a cycle through \(names)")
    }
    for index in order { try add(pending[index], to: &graph) }
  }

  private func read(_ proto: UnsafeMutablePointer<Onnx__NodeProto>, index: Int) throws(ImportError) -> PendingNode {
    let p = proto.pointee
    let name = text(p.name)
    let opType = text(p.op_type)
    let label = name.isEmpty ? "\(opType) node #\(index)" : "node '\(name)' (\(opType))"
    let shortLabel = name.isEmpty ? "\(opType) node #\(index)" : "\(opType) '\(name)'"
    var attributes: [Attribute] = []
    for a in messages(p.attribute, p.n_attribute) { attributes.append(try attribute(a, owner: label)) }
    let inputs = strings(p.input, p.n_input)
    var reads = inputs.filter { !$0.isEmpty }
    for attribute in attributes {
      for subgraph in attribute.subgraphs {
        reads += subgraph.outerReferences.map { subgraph[$0].name }
      }
    }
    return PendingNode(
      proto: proto, label: label, shortLabel: shortLabel, inputs: inputs, outputs: strings(p.output, p.n_output),
      attributes: attributes,
      reads: reads)
  }

  private func add(_ node: PendingNode, to graph: inout Graph) throws(ImportError) {
    var inputs: [ValueID?] = []
    inputs.reserveCapacity(node.inputs.count)
    for name in node.inputs {
      if name.isEmpty {
        inputs.append(nil)
      } else if let id = graph.value(named: name) {
        inputs.append(id)
      } else {
        // Only reached in subgraphs: `addNodes` refused undefined names elsewhere.
        inputs.append(try add { () throws(GraphError) in try graph.addOuterReference(name: name) })
      }
    }
    let p = node.proto.pointee
    let id = try add { () throws(GraphError) in
      try graph.addNode(
        opType: text(p.op_type), domain: text(p.domain), name: text(p.name), inputs: inputs, outputs: node.outputs,
        attributes: node.attributes)
    }
    let overload = text(p.overload)
    let docString = text(p.doc_string)
    let metadata = self.metadata(p.metadata_props, p.n_metadata_props)
    if !overload.isEmpty || !docString.isEmpty || !metadata.isEmpty {
      graph.updateNode(id) { n in
        n.overload = overload
        n.docString = docString
        n.metadataProps = metadata
      }
    }
  }
}

// MARK: - Ordering

/// A topological order of nodes given each node's producers, preferring the lowest index among
/// the ready nodes (so a sorted file keeps its order); nil when there is a cycle.
func topologicalOrder(_ dependencies: [[Int]]) -> [Int]? {
  let count = dependencies.count
  if dependencies.enumerated().allSatisfy({ index, deps in deps.allSatisfy { $0 < index } }) {
    return Array(0..<count)
  }
  var pending = [Int](repeating: 0, count: count)
  var consumers = [[Int]](repeating: [], count: count)
  for (index, deps) in dependencies.enumerated() {
    for producer in Set(deps) {
      pending[index] += 1
      consumers[producer].append(index)
    }
  }
  var ready = IndexHeap()
  for index in 0..<count where pending[index] == 0 { ready.push(index) }
  var order: [Int] = []
  order.reserveCapacity(count)
  while let index = ready.pop() {
    order.append(index)
    for consumer in consumers[index] {
      pending[consumer] -= 1
      if pending[consumer] == 0 { ready.push(consumer) }
    }
  }
  return order.count == count ? order : nil
}

/// The nodes left when those not on a cycle are stripped away, for error messages.
/// Stripped one at a time from a worklist, so the cost is O(nodes + edges) whatever order a
/// (possibly hostile) file lists them in; repeated passes over the survivors were quadratic.
func nodesOnCycles(_ dependencies: [[Int]]) -> [Int] {
  var consumers = [[Int]](repeating: [], count: dependencies.count)
  for (index, deps) in dependencies.enumerated() { for producer in deps { consumers[producer].append(index) } }
  // Live producers and consumers of each node, an edge counted as often as it is listed.
  var producerCount = dependencies.map(\.count)
  var consumerCount = consumers.map(\.count)
  var alive = [Bool](repeating: true, count: dependencies.count)
  var stripped = dependencies.indices.filter { producerCount[$0] == 0 || consumerCount[$0] == 0 }
  while let index = stripped.popLast() {
    guard alive[index] else { continue }
    alive[index] = false
    for consumer in consumers[index] where alive[consumer] {
      producerCount[consumer] -= 1
      if producerCount[consumer] == 0 { stripped.append(consumer) }
    }
    for producer in dependencies[index] where alive[producer] {
      consumerCount[producer] -= 1
      if consumerCount[producer] == 0 { stripped.append(producer) }
    }
  }
  return dependencies.indices.filter { alive[$0] }
}

/// A binary min-heap of indices.
private struct IndexHeap {
  private var items: [Int] = []

  mutating func push(_ item: Int) {
    items.append(item)
    var i = items.count - 1
    while i > 0, items[i] < items[(i - 1) / 2] {
      items.swapAt(i, (i - 1) / 2)
      i = (i - 1) / 2
    }
  }

  mutating func pop() -> Int? {
    guard let first = items.first else { return nil }
    let last = items.removeLast()
    guard !items.isEmpty else { return first }
    items[0] = last
    var i = 0
    while true {
      let l = 2 * i + 1
      let r = l + 1
      var smallest = i
      if l < items.count, items[l] < items[smallest] { smallest = l }
      if r < items.count, items[r] < items[smallest] { smallest = r }
      if smallest == i { break }
      items.swapAt(i, smallest)
      i = smallest
    }
    return first
  }
}
