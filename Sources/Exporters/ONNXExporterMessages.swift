// Model → protobuf-c messages (Onnx__ModelProto and everything under it). The messages point at
// the model's tensor bytes rather than copying them; the arena owns the rest.

import CProtobufC
import Graph
import ONNXProto

/// Where the tensors that go to an external data file are placed in it.
struct ExternalLayout {
  /// The file name written into each tensor's `location`, relative to the model's folder.
  let location: String
  /// Tensors with fewer bytes than this stay inline.
  let threshold: Int
  /// Every tensor starts at a multiple of this.
  let alignment: Int
  /// Tensors in file order, with their offsets.
  private(set) var chunks: [(storage: TensorStorage, offset: Int)] = []
  private(set) var size = 0
  private var offsets: [ObjectIdentifier: Int] = [:]

  init(location: String, threshold: Int, alignment: Int) {
    self.location = location
    self.threshold = threshold
    self.alignment = max(alignment, 1)
  }

  /// The offset of `storage`'s bytes in the file; storage shared by several tensors is written once.
  mutating func place(_ storage: TensorStorage) -> Int {
    if let offset = offsets[ObjectIdentifier(storage)] { return offset }
    let offset = (size + alignment - 1) / alignment * alignment
    chunks.append((storage, offset))
    offsets[ObjectIdentifier(storage)] = offset
    size = offset + storage.count
    return offset
  }
}

/// Builds the protobuf-c message tree of a model.
final class MessageBuilder {
  let arena = MessageArena()
  private(set) var external: ExternalLayout?
  /// The storages the messages point into, kept alive while they exist.
  private var retained: [TensorStorage] = []
  private let path: String

  init(path: String, external: ExternalLayout?) {
    self.path = path
    self.external = external
  }

  private func fail(_ message: String) -> ONNXExportError { ONNXExportError(path: path, message: message) }

  // MARK: Model

  func model(_ m: Model) throws(ONNXExportError) -> UnsafeMutablePointer<Onnx__ModelProto> {
    let p = arena.message(onnx__model_proto__init)
    p.pointee.has_ir_version = 1
    p.pointee.ir_version = m.irVersion
    (p.pointee.n_opset_import, p.pointee.opset_import) = opsetImports(m.opsetImports)
    p.pointee.producer_name = arena.optionalString(m.producerName)
    p.pointee.producer_version = arena.optionalString(m.producerVersion)
    p.pointee.domain = arena.optionalString(m.domain)
    if m.modelVersion != 0 {
      p.pointee.has_model_version = 1
      p.pointee.model_version = m.modelVersion
    }
    p.pointee.doc_string = arena.optionalString(m.docString)
    if let outer = m.graph.outerReferences.first {
      throw fail("the model's graph reads '\(m.graph[outer].name)', which no node, input or initializer defines")
    }
    p.pointee.graph = try graph(m.graph)
    (p.pointee.n_metadata_props, p.pointee.metadata_props) = metadata(m.metadataProps)
    var functions: [UnsafeMutablePointer<Onnx__FunctionProto>] = []
    for f in m.functions { functions.append(try function(f)) }
    (p.pointee.n_functions, p.pointee.functions) = (functions.count, arena.array(functions))
    let training = try m.opaqueTrainingInfo.map { (o) throws(ONNXExportError) in
      try unpack(o, "training info", onnx__training_info_proto__unpack)
    }
    (p.pointee.n_training_info, p.pointee.training_info) = (training.count, arena.array(training))
    let configuration = try m.opaqueConfiguration.map { (o) throws(ONNXExportError) in
      try unpack(o, "device configuration", onnx__device_configuration_proto__unpack)
    }
    (p.pointee.n_configuration, p.pointee.configuration) = (configuration.count, arena.array(configuration))
    return p
  }

  private func opsetImports(
    _ imports: [OpsetImport]
  ) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<Onnx__OperatorSetIdProto>?>?) {
    let items = imports.map { o in
      let p = arena.message(onnx__operator_set_id_proto__init)
      p.pointee.domain = arena.string(o.domain)
      p.pointee.has_version = 1
      p.pointee.version = o.version
      return p
    }
    return (items.count, arena.array(items))
  }

  private func metadata(
    _ entries: [MetadataEntry]
  ) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?) {
    let items = entries.map { entry(key: $0.key, value: $0.value) }
    return (items.count, arena.array(items))
  }

  private func entry(key: String, value: String) -> UnsafeMutablePointer<Onnx__StringStringEntryProto> {
    let p = arena.message(onnx__string_string_entry_proto__init)
    p.pointee.key = arena.string(key)
    p.pointee.value = arena.string(value)
    return p
  }

  /// A message carried as bytes, unpacked again so that it can sit in the tree.
  private func unpack<T>(
    _ o: OpaqueProto, _ what: String,
    _ unpacker: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<T>?
  ) throws(ONNXExportError) -> UnsafeMutablePointer<T> {
    let message = o.bytes.withUnsafeBufferPointer { unpacker(nil, $0.count, $0.baseAddress) }
    guard let message else { throw fail("a \(what) message carried from the input is not valid protobuf") }
    return arena.adoptUnpacked(message)
  }

  // MARK: Graphs

  func graph(_ g: Graph) throws(ONNXExportError) -> UnsafeMutablePointer<Onnx__GraphProto> {
    let p = arena.message(onnx__graph_proto__init)
    let nodes = try self.nodes(of: g)
    (p.pointee.n_node, p.pointee.node) = (nodes.count, arena.array(nodes))
    p.pointee.name = arena.optionalString(g.name)
    p.pointee.doc_string = arena.optionalString(g.docString)
    let inputs = g.inputs.map { valueInfo(g[$0]) }
    (p.pointee.n_input, p.pointee.input) = (inputs.count, arena.array(inputs))
    let outputs = g.outputs.map { valueInfo(g[$0]) }
    (p.pointee.n_output, p.pointee.output) = (outputs.count, arena.array(outputs))
    var initializers: [UnsafeMutablePointer<Onnx__TensorProto>] = []
    var described: [UnsafeMutablePointer<Onnx__ValueInfoProto>] = []
    for id in g.valueIDs {
      let value = g[id]
      switch value.definition {
      case .input(let defaultValue?): initializers.append(tensor(defaultValue, name: value.name))
      case .initializer(let t):
        initializers.append(tensor(t, name: value.name))
        let implied = ValueType.tensor(t.dtype, shape: t.shape.map { .value($0) })
        if !g.isGraphOutput(id), (value.type.map { $0 != implied } ?? false) || hasDescription(value) {
          described.append(valueInfo(value))
        }
      case .node:
        if !g.isGraphOutput(id), value.type != nil || hasDescription(value) { described.append(valueInfo(value)) }
      case .input, .outerScope: break
      }
    }
    (p.pointee.n_initializer, p.pointee.initializer) = (initializers.count, arena.array(initializers))
    (p.pointee.n_value_info, p.pointee.value_info) = (described.count, arena.array(described))
    let annotations = try g.opaqueQuantizationAnnotations.map { (o) throws(ONNXExportError) in
      try unpack(o, "quantization annotation", onnx__tensor_annotation__unpack)
    }
    (p.pointee.n_quantization_annotation, p.pointee.quantization_annotation) =
      (annotations.count, arena.array(annotations))
    (p.pointee.n_metadata_props, p.pointee.metadata_props) = metadata(g.metadataProps)
    return p
  }

  private func hasDescription(_ value: Value) -> Bool {
    !value.docString.isEmpty || !value.metadataProps.isEmpty
  }

  /// The graph's nodes in topological order (ID order among the ready ones).
  private func nodes(of g: Graph) throws(ONNXExportError) -> [UnsafeMutablePointer<Onnx__NodeProto>] {
    guard let order = g.topologicalOrder() else { throw fail("graph '\(g.name)' has a cycle") }
    var nodes: [UnsafeMutablePointer<Onnx__NodeProto>] = []
    nodes.reserveCapacity(order.count)
    for id in order { nodes.append(try node(g[id], in: g)) }
    return nodes
  }

  private func valueInfo(_ value: Value) -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
    let p = arena.message(onnx__value_info_proto__init)
    p.pointee.name = arena.string(value.name)
    p.pointee.type = value.type.map { typeProto($0) }
    p.pointee.doc_string = arena.optionalString(value.docString)
    (p.pointee.n_metadata_props, p.pointee.metadata_props) = metadata(value.metadataProps)
    return p
  }

  // MARK: Functions

  /// A model-local function. Constants in its body (which a function cannot hold as
  /// initializers) are written as `Constant` nodes ahead of the others.
  private func function(_ f: Function) throws(ONNXExportError) -> UnsafeMutablePointer<Onnx__FunctionProto> {
    let body = f.body
    guard body.outerReferences.isEmpty else {
      throw fail("function '\(f.name)' reads '\(body[body.outerReferences[0]].name)', which it does not define")
    }
    let p = arena.message(onnx__function_proto__init)
    p.pointee.name = arena.string(f.name)
    p.pointee.domain = arena.optionalString(f.domain)
    p.pointee.overload = arena.optionalString(f.overload)
    (p.pointee.n_input, p.pointee.input) = (body.inputs.count, arena.strings(body.inputs.map { body[$0].name }))
    (p.pointee.n_output, p.pointee.output) = (body.outputs.count, arena.strings(body.outputs.map { body[$0].name }))
    (p.pointee.n_attribute, p.pointee.attribute) = (f.attributeNames.count, arena.strings(f.attributeNames))
    var defaults: [UnsafeMutablePointer<Onnx__AttributeProto>] = []
    for a in f.attributeDefaults { defaults.append(try attribute(a)) }
    (p.pointee.n_attribute_proto, p.pointee.attribute_proto) = (defaults.count, arena.array(defaults))
    var nodes: [UnsafeMutablePointer<Onnx__NodeProto>] = []
    var described: [UnsafeMutablePointer<Onnx__ValueInfoProto>] = []
    for id in body.valueIDs {
      let value = body[id]
      if case .initializer(let t) = value.definition { nodes.append(constantNode(t, output: value.name)) }
      if value.type != nil || hasDescription(value) { described.append(valueInfo(value)) }
    }
    nodes += try self.nodes(of: body)
    (p.pointee.n_node, p.pointee.node) = (nodes.count, arena.array(nodes))
    (p.pointee.n_value_info, p.pointee.value_info) = (described.count, arena.array(described))
    (p.pointee.n_opset_import, p.pointee.opset_import) = opsetImports(f.opsetImports)
    p.pointee.doc_string = arena.optionalString(f.docString)
    (p.pointee.n_metadata_props, p.pointee.metadata_props) = metadata(f.metadataProps)
    return p
  }

  private func constantNode(_ t: Tensor, output: String) -> UnsafeMutablePointer<Onnx__NodeProto> {
    let p = arena.message(onnx__node_proto__init)
    p.pointee.op_type = arena.string("Constant")
    (p.pointee.n_output, p.pointee.output) = (1, arena.strings([output]))
    let a = arena.message(onnx__attribute_proto__init)
    a.pointee.name = arena.string("value")
    a.pointee.has_type = 1
    a.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR
    a.pointee.t = tensor(t, name: nil)
    (p.pointee.n_attribute, p.pointee.attribute) = (1, arena.array([a]))
    return p
  }

  // MARK: Nodes and attributes

  private func node(_ n: Node, in g: Graph) throws(ONNXExportError) -> UnsafeMutablePointer<Onnx__NodeProto> {
    let p = arena.message(onnx__node_proto__init)
    let inputs = n.inputs.map { $0.map { g[$0].name } ?? "" }
    let outputs = n.outputs.map { $0.map { g[$0].name } ?? "" }
    (p.pointee.n_input, p.pointee.input) = (inputs.count, arena.strings(inputs))
    (p.pointee.n_output, p.pointee.output) = (outputs.count, arena.strings(outputs))
    p.pointee.name = arena.optionalString(n.name)
    p.pointee.op_type = arena.string(n.opType)
    p.pointee.domain = arena.optionalString(n.domain)
    p.pointee.overload = arena.optionalString(n.overload)
    var attributes: [UnsafeMutablePointer<Onnx__AttributeProto>] = []
    for a in n.attributes { attributes.append(try attribute(a)) }
    (p.pointee.n_attribute, p.pointee.attribute) = (attributes.count, arena.array(attributes))
    p.pointee.doc_string = arena.optionalString(n.docString)
    (p.pointee.n_metadata_props, p.pointee.metadata_props) = metadata(n.metadataProps)
    return p
  }

  private func attribute(_ a: Attribute) throws(ONNXExportError) -> UnsafeMutablePointer<Onnx__AttributeProto> {
    let p = arena.message(onnx__attribute_proto__init)
    p.pointee.name = arena.string(a.name)
    p.pointee.doc_string = arena.optionalString(a.docString)
    if let ref = a.refAttrName { p.pointee.ref_attr_name = arena.string(ref) }
    p.pointee.has_type = 1
    p.pointee.type = try setValue(a.value, of: p)
    return p
  }

  /// Fills the field that holds `value` and returns the attribute type that names it.
  private func setValue(
    _ value: Attribute.Value, of p: UnsafeMutablePointer<Onnx__AttributeProto>
  ) throws(ONNXExportError) -> Onnx__AttributeProto__AttributeType {
    switch value {
    case .float(let v): (p.pointee.has_f, p.pointee.f) = (1, v)
    case .int(let v): (p.pointee.has_i, p.pointee.i) = (1, v)
    case .string(let v): (p.pointee.has_s, p.pointee.s) = (1, arena.bytes(v))
    case .tensor(let t): p.pointee.t = tensor(t, name: nil)
    case .graph(let g): p.pointee.g = try graph(g)
    case .sparseTensor(let o):
      p.pointee.sparse_tensor = try unpack(o, "sparse tensor", onnx__sparse_tensor_proto__unpack)
    case .type(let t): p.pointee.tp = typeProto(t)
    case .floats(let v): (p.pointee.n_floats, p.pointee.floats) = (v.count, arena.scalars(v))
    case .ints(let v): (p.pointee.n_ints, p.pointee.ints) = (v.count, arena.scalars(v))
    case .strings(let v): (p.pointee.n_strings, p.pointee.strings) = (v.count, arena.scalars(v.map { arena.bytes($0) }))
    case .tensors(let v):
      (p.pointee.n_tensors, p.pointee.tensors) = (v.count, arena.array(v.map { tensor($0, name: nil) }))
    case .graphs(let v):
      var graphs: [UnsafeMutablePointer<Onnx__GraphProto>] = []
      for g in v { graphs.append(try graph(g)) }
      (p.pointee.n_graphs, p.pointee.graphs) = (graphs.count, arena.array(graphs))
    case .sparseTensors(let v):
      var items: [UnsafeMutablePointer<Onnx__SparseTensorProto>] = []
      for o in v { items.append(try unpack(o, "sparse tensor", onnx__sparse_tensor_proto__unpack)) }
      (p.pointee.n_sparse_tensors, p.pointee.sparse_tensors) = (items.count, arena.array(items))
    case .types(let v):
      (p.pointee.n_type_protos, p.pointee.type_protos) = (v.count, arena.array(v.map { typeProto($0) }))
    case .reference(let type): return Onnx__AttributeProto__AttributeType(rawValue: UInt32(bitPattern: type))
    }
    return Self.attributeType(value)
  }

  private static func attributeType(_ value: Attribute.Value) -> Onnx__AttributeProto__AttributeType {
    switch value {
    case .float: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
    case .int: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
    case .string: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING
    case .tensor: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR
    case .graph: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH
    case .sparseTensor: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR
    case .type: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO
    case .floats: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
    case .ints: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
    case .strings: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS
    case .tensors: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS
    case .graphs: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS
    case .sparseTensors: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS
    case .types: return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS
    case .reference(let type): return Onnx__AttributeProto__AttributeType(rawValue: UInt32(bitPattern: type))
    }
  }

  // MARK: Tensors and types

  /// A tensor: `raw_data` pointing at the tensor's own bytes (strings in `string_data`), or a
  /// reference into the external data file when it is large enough to go there.
  func tensor(_ t: Tensor, name: String?) -> UnsafeMutablePointer<Onnx__TensorProto> {
    let p = arena.message(onnx__tensor_proto__init)
    (p.pointee.n_dims, p.pointee.dims) = (t.shape.count, arena.scalars(t.shape.map { Int64($0) }))
    (p.pointee.has_data_type, p.pointee.data_type) = (1, t.dtype.rawValue)
    p.pointee.name = name.flatMap { arena.optionalString($0) }
    p.pointee.doc_string = arena.optionalString(t.docString)
    switch t.payload {
    case .strings(let elements):
      (p.pointee.n_string_data, p.pointee.string_data) = (
        elements.count, arena.scalars(elements.map { arena.bytes($0) })
      )
    case .raw(let storage):
      retained.append(storage)
      if var layout = external, storage.count >= layout.threshold {
        let offset = layout.place(storage)
        external = layout
        let entries = [
          entry(key: "location", value: layout.location), entry(key: "offset", value: String(offset)),
          entry(key: "length", value: String(storage.count)),
        ]
        (p.pointee.n_external_data, p.pointee.external_data) = (entries.count, arena.array(entries))
        (p.pointee.has_data_location, p.pointee.data_location) = (1, ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
      } else {
        let base = storage.storedBytes.baseAddress.map {
          UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self))
        }
        (p.pointee.has_raw_data, p.pointee.raw_data) = (1, ProtobufCBinaryData(len: storage.count, data: base))
      }
    }
    return p
  }

  private func typeProto(_ type: ValueType) -> UnsafeMutablePointer<Onnx__TypeProto> {
    let p = arena.message(onnx__type_proto__init)
    switch type {
    case .tensor(let dtype, let shape):
      let t = arena.message(onnx__type_proto__tensor__init)
      if dtype != .undefined { (t.pointee.has_elem_type, t.pointee.elem_type) = (1, dtype.rawValue) }
      t.pointee.shape = shape.map { shapeProto($0) }
      (p.pointee.value_case, p.pointee.tensor_type) = (ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, t)
    case .sparseTensor(let dtype, let shape):
      let t = arena.message(onnx__type_proto__sparse_tensor__init)
      if dtype != .undefined { (t.pointee.has_elem_type, t.pointee.elem_type) = (1, dtype.rawValue) }
      t.pointee.shape = shape.map { shapeProto($0) }
      (p.pointee.value_case, p.pointee.sparse_tensor_type) = (ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE, t)
    case .sequence(let element):
      let s = arena.message(onnx__type_proto__sequence__init)
      s.pointee.elem_type = element.map { typeProto($0) }
      (p.pointee.value_case, p.pointee.sequence_type) = (ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE, s)
    case .optional(let element):
      let o = arena.message(onnx__type_proto__optional__init)
      o.pointee.elem_type = element.map { typeProto($0) }
      (p.pointee.value_case, p.pointee.optional_type) = (ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE, o)
    case .map(let key, let value):
      let m = arena.message(onnx__type_proto__map__init)
      if key != .undefined { (m.pointee.has_key_type, m.pointee.key_type) = (1, key.rawValue) }
      m.pointee.value_type = value.map { typeProto($0) }
      (p.pointee.value_case, p.pointee.map_type) = (ONNX__TYPE_PROTO__VALUE_MAP_TYPE, m)
    case .opaque(let domain, let name):
      let o = arena.message(onnx__type_proto__opaque__init)
      (o.pointee.domain, o.pointee.name) = (arena.optionalString(domain), arena.optionalString(name))
      (p.pointee.value_case, p.pointee.opaque_type) = (ONNX__TYPE_PROTO__VALUE_OPAQUE_TYPE, o)
    }
    return p
  }

  private func shapeProto(_ dims: [Dim]) -> UnsafeMutablePointer<Onnx__TensorShapeProto> {
    let p = arena.message(onnx__tensor_shape_proto__init)
    let items = dims.map { dim in
      let d = arena.message(onnx__tensor_shape_proto__dimension__init)
      switch dim {
      case .value(let v):
        (d.pointee.value_case, d.pointee.dim_value) = (ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, Int64(v))
      case .param(let name):
        (d.pointee.value_case, d.pointee.dim_param) = (
          ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, arena.string(name)
        )
      case .unknown: break
      }
      return d
    }
    (p.pointee.n_dim, p.pointee.dim) = (items.count, arena.array(items))
    return p
  }
}
