import Graph

/// A model laid out as `.tmf`: every section but the data built in memory, the data as a list of
/// tensors at their aligned offsets. See docs/tmf.md for the meaning of each field.
struct TMFLayout {
  private var strings: [String] = []
  private var stringIndex: [String: UInt32] = [:]
  private var tensorRecords: [UInt8] = []
  private var tensorCount = 0
  /// Graph 0 is the main graph, graph `i + 1` subgraph record `i` (numbered as found, so a graph's
  /// parent has a smaller number); each graph's node records, concatenated in graph order at the end.
  private var graphs: [GraphEntry] = []
  private var nodeCount = 0
  private var attributeRecords: [UInt8] = []
  private var attributeCount = 0
  private var u32Pool: [UInt32] = []
  private var i64Pool: [Int64] = []
  private var f32Pool: [Float] = []
  private var graphSection: [UInt8] = []
  private var metadataSection: [UInt8] = []
  /// Tensors with data, at offsets relative to the data section.
  private var dataTensors: [(offset: Int, tensor: Tensor)] = []
  private var dataLength = 0

  /// The constants to encode, with their quantization axis (see `WeightEncoder.plan`).
  private var encodingPlan: [ValueID: Int] = [:]
  private var weightOptions = TMFWeightOptions()

  private(set) var summary = TMFWriteSummary(fileSize: 0, tensorBytes: 0, tensorCount: 0, nodeCount: 0)
  private var sections: [(kind: TMF.SectionKind, bytes: [UInt8])] = []
  private var dataOffset = 0
  private var dataCRC: UInt32 = 0

  init(model: Model, metadata: [MetadataEntry], weights: TMFWeightOptions = TMFWeightOptions()) throws(TMFWriteError) {
    let graph = model.graph
    weightOptions = weights
    encodingPlan = WeightEncoder.plan(graph, weights)
    if let outer = graph.outerReferences.first {
      throw TMFWriteError("value '\(graph[outer].name)' is read from an enclosing graph, but the main graph has none")
    }
    graphs.append(GraphEntry(name: string(graph.name), parent: 0))
    let valueTensor = try addGraph(graph, index: 0, depth: 0, outer: [:])
    try addGraphSection(model, valueTensor)
    addMetadata(metadata)
    try finish()
  }

  // MARK: Strings and pools

  private mutating func string(_ s: String) -> UInt32 {
    if let i = stringIndex[s] { return i }
    let i = UInt32(strings.count)
    strings.append(s)
    stringIndex[s] = i
    return i
  }

  private func checkedIndex(_ count: Int, _ what: String) throws(TMFWriteError) -> UInt32 {
    guard count < Int(TMF.absent) else { throw TMFWriteError("too many \(what) for .tmf 1.0 (at most \(TMF.absent - 1))") }
    return UInt32(count)
  }

  // MARK: Tensors

  /// Appends a tensor record; `data` is written to the data section when given, encoded as the
  /// weight options say when `axis` is given (the constant is in the encoding plan).
  private mutating func addTensor(
    _ name: String, kind: TMF.TensorKind, type: ValueType?, data: Tensor?, axis: Int? = nil, graph: UInt32 = 0
  ) throws(TMFWriteError) -> UInt32 {
    let index = try checkedIndex(tensorCount, "tensors")
    var record = [UInt8](repeating: 0, count: TMF.TensorRecord.size)
    record.put(string(name), at: TMF.TensorRecord.name)
    record.put(graph, at: TMF.TensorRecord.graph)
    record.put(kind.rawValue, at: TMF.TensorRecord.kind)
    record.put(TMF.Encoding.raw.rawValue, at: TMF.TensorRecord.encoding)
    record.put(Int32(-1), at: TMF.TensorRecord.quantAxis)
    let label = name.isEmpty ? "tensor attribute" : "tensor '\(name)'"
    if let data, let axis, let values = data.floats,
      let encoded = WeightEncoder.encode(values, shape: data.shape, axis: axis, weightOptions)
    {
      try addEncoded(encoded, name: name, original: data, into: &record)
    } else if let data {
      guard TMF.supportedDTypes.contains(data.dtype), case .raw = data.payload else {
        throw TMFWriteError("\(label): element type \(data.dtype) is not stored by .tmf 1.0 (float, float16, double, int64, int32, int8, uint8, bool)")
      }
      record.put(data.dtype.rawValue, at: TMF.TensorRecord.dtype)
      record.put(try checkedIndex(data.shape.count, "dims"), at: TMF.TensorRecord.rank)
      record.put(try checkedIndex(i64Pool.count, "pool entries"), at: TMF.TensorRecord.dimsStart)
      i64Pool.append(contentsOf: data.shape.map { Int64($0) })
      let offset = TMF.aligned(dataLength, to: TMF.dataAlignment) ?? dataLength
      record.put(UInt64(offset), at: TMF.TensorRecord.dataOffset)
      record.put(UInt64(data.byteCount), at: TMF.TensorRecord.dataLength)
      dataTensors.append((offset, data))
      dataLength = offset + data.byteCount
      summary.tensorBytes += data.byteCount
    } else if case .tensor(let dtype, let shape)? = type {
      record.put(dtype.rawValue, at: TMF.TensorRecord.dtype)
      if let shape {
        record.put(try checkedIndex(shape.count, "dims"), at: TMF.TensorRecord.rank)
        record.put(try checkedIndex(i64Pool.count, "pool entries"), at: TMF.TensorRecord.dimsStart)
        for dim in shape {
          switch dim {
          case .value(let v): i64Pool.append(Int64(v))
          case .param(let p): i64Pool.append(-2 - Int64(string(p)))
          case .unknown: i64Pool.append(TMF.unknownDim)
          }
        }
      } else {
        record.put(TMF.absent, at: TMF.TensorRecord.rank)
      }
    } else {
      record.put(TMF.absent, at: TMF.TensorRecord.rank)  // type unknown: the runtime infers it
    }
    tensorRecords.append(contentsOf: record)
    tensorCount += 1
    return index
  }

  /// Fills an encoded constant's record (dtype float, the encoding, quantization parameters in
  /// the f32 pool) and queues its bytes.
  private mutating func addEncoded(_ encoded: EncodedWeight, name: String, original: Tensor, into record: inout [UInt8]) throws(TMFWriteError) {
    record.put(DType.float.rawValue, at: TMF.TensorRecord.dtype)
    record.put(encoded.encoding.rawValue, at: TMF.TensorRecord.encoding)
    record.put(try checkedIndex(original.shape.count, "dims"), at: TMF.TensorRecord.rank)
    record.put(try checkedIndex(i64Pool.count, "pool entries"), at: TMF.TensorRecord.dimsStart)
    i64Pool.append(contentsOf: original.shape.map { Int64($0) })
    record.put(Int32(encoded.axis), at: TMF.TensorRecord.quantAxis)
    record.put(try checkedIndex(encoded.parameters.count, "quantization parameters"), at: TMF.TensorRecord.quantCount)
    record.put(try checkedIndex(f32Pool.count, "pool entries"), at: TMF.TensorRecord.scaleStart)
    record.put(TMF.absent, at: TMF.TensorRecord.zeroPointStart)  // symmetric: zero points are 0
    f32Pool.append(contentsOf: encoded.parameters)
    let bytes = Tensor(dtype: .uint8, shape: [encoded.data.count], storage: .copying(encoded.data))!
    let offset = TMF.aligned(dataLength, to: TMF.dataAlignment) ?? dataLength
    record.put(UInt64(offset), at: TMF.TensorRecord.dataOffset)
    record.put(UInt64(bytes.byteCount), at: TMF.TensorRecord.dataLength)
    dataTensors.append((offset, bytes))
    dataLength = offset + bytes.byteCount
    summary.tensorBytes += bytes.byteCount
    let values = original.floats ?? []
    summary.encoded.append(
      TMFEncodedTensor(
        name: name, encoding: encoded.encoding.name, shape: original.shape,
        bytes: bytes.byteCount + 4 * encoded.parameters.count, originalBytes: original.byteCount,
        relativeError: WeightEncoder.relativeError(values, encoded.decoded)))
  }

  // MARK: Graphs

  /// One graph's part of the file: its node records, and for a subgraph its record.
  private struct GraphEntry {
    var nodes: [UInt8] = []
    var nodeCount = 0
    var record = [UInt8](repeating: 0, count: TMF.SubgraphRecord.size)

    init(name: UInt32, parent: UInt32) {
      record.put(name, at: TMF.SubgraphRecord.name)
      record.put(parent, at: TMF.SubgraphRecord.parent)
    }
  }

  /// Writes graph `g`'s inputs, constants and nodes (and, through its nodes, its subgraphs);
  /// `outer` maps its outer references to the tensors of the enclosing graphs they name. Returns
  /// the tensor of each of its values.
  private mutating func addGraph(_ graph: Graph, index g: UInt32, depth: Int, outer: [ValueID: UInt32]) throws(TMFWriteError) -> [ValueID: UInt32] {
    let label = g == 0 ? "the graph" : "subgraph '\(graph.name)'"
    guard let order = graph.topologicalOrder() else { throw TMFWriteError("\(label) has a cycle") }
    var valueTensor = outer
    for input in graph.inputs {
      guard case .input(let defaultValue) = graph[input].definition else { continue }
      valueTensor[input] = try addTensor(graph[input].name, kind: .input, type: graph[input].type, data: defaultValue, graph: g)
    }
    for value in graph.initializers where valueTensor[value] == nil {
      guard let data = graph.constant(value) else { continue }
      // The encoding plan is the main graph's (its value IDs): subgraph constants stay raw.
      valueTensor[value] = try addTensor(
        graph[value].name, kind: .constant, type: nil, data: data, axis: g == 0 ? encodingPlan[value] : nil, graph: g)
    }
    for id in order { try addNode(graph[id], in: graph, index: g, depth: depth, values: &valueTensor) }
    guard g > 0 else { return valueTensor }
    var outputs: [UInt32] = []
    for output in graph.outputs {
      guard let t = valueTensor[output] else { throw TMFWriteError("\(label): output '\(graph[output].name)' is not produced") }
      outputs.append(t)
    }
    let lists: [(start: Int, count: Int, [UInt32])] = [
      (TMF.SubgraphRecord.inputsStart, TMF.SubgraphRecord.inputCount, graph.inputs.compactMap { valueTensor[$0] }),
      (TMF.SubgraphRecord.outputsStart, TMF.SubgraphRecord.outputCount, outputs),
      (TMF.SubgraphRecord.outerStart, TMF.SubgraphRecord.outerCount, graph.outerReferences.compactMap { outer[$0] }),
    ]
    for (startField, countField, list) in lists {
      graphs[Int(g)].record.put(try checkedIndex(u32Pool.count, "pool entries"), at: startField)
      graphs[Int(g)].record.put(try checkedIndex(list.count, "graph inputs and outputs"), at: countField)
      u32Pool.append(contentsOf: list)
    }
    return valueTensor
  }

  /// Writes the subgraphs of `attributes` (held by a node of graph `g` at `depth`) before the node
  /// itself, so that each node's attributes stay one run of records; returns the graph index of
  /// each subgraph attribute by position.
  private mutating func addSubgraphs(
    of attributes: [Attribute], node label: String, in graph: Graph, index g: UInt32, depth: Int, values valueTensor: [ValueID: UInt32]
  ) throws(TMFWriteError) -> [Int: UInt32] {
    var indices: [Int: UInt32] = [:]
    for (position, attribute) in attributes.enumerated() {
      guard case .graph(let subgraph) = attribute.value, attribute.refAttrName == nil else { continue }
      let what = "\(label): attribute '\(attribute.name)'"
      guard depth < TMF.maxGraphDepth else {
        throw TMFWriteError("\(what): subgraphs nest deeper than \(TMF.maxGraphDepth) levels, the most .tmf stores")
      }
      var outer: [ValueID: UInt32] = [:]
      for ref in subgraph.outerReferences {
        let name = subgraph[ref].name
        guard let v = graph.value(named: name), let t = valueTensor[v] else {
          throw TMFWriteError("\(what): the subgraph reads '\(name)', which is not defined before the node")
        }
        outer[ref] = t
      }
      let index = try checkedIndex(graphs.count, "graphs")
      graphs.append(GraphEntry(name: string(subgraph.name), parent: g))
      _ = try addGraph(subgraph, index: index, depth: depth + 1, outer: outer)
      indices[position] = index
    }
    return indices
  }

  // MARK: Nodes

  private mutating func addNode(
    _ node: Node, in graph: Graph, index g: UInt32, depth: Int, values valueTensor: inout [ValueID: UInt32]
  ) throws(TMFWriteError) {
    let label = "node '\(node.name.isEmpty ? "#\(node.id.index)" : node.name)' (\(node.domain.isEmpty ? "" : node.domain + ".")\(node.opType))"
    var activation: FusedActivation?
    if node.domain == FusedActivation.domain {
      guard let fused = FusedActivation(of: node) else {
        throw TMFWriteError("\(label): operator of domain \(node.domain) has no .tmf op code (only fused layers do)")
      }
      activation = fused
    } else if !(node.domain.isEmpty || node.domain == "ai.onnx") {
      throw TMFWriteError("\(label): custom-domain operator has no .tmf op code (docs/tmf.md lists them)")
    }
    guard let code = TMF.opCode(of: node.opType) else {
      throw TMFWriteError("\(label): operator has no .tmf op code: rebirth's runtime does not run it (docs/tmf.md lists the operators)")
    }
    let attributes = node.attributes.filter {
      activation == nil || ($0.name != FusedActivation.attributeName && $0.name != FusedActivation.parametersName)
    }
    let subgraphs = try addSubgraphs(of: attributes, node: label, in: graph, index: g, depth: depth, values: valueTensor)
    _ = try checkedIndex(nodeCount, "nodes")
    var record = [UInt8](repeating: 0, count: TMF.NodeRecord.size)
    record.put(string(node.name), at: TMF.NodeRecord.name)
    record.put(code, at: TMF.NodeRecord.opCode)
    if let activation {
      let activationCode = TMF.activationCodes.firstIndex(of: activation.opType) ?? 0
      record.put(UInt32(activationCode), at: TMF.NodeRecord.activation)
      record.put(try checkedIndex(f32Pool.count, "pool entries"), at: TMF.NodeRecord.activationParamsStart)
      record.put(UInt32(activation.parameters.count), at: TMF.NodeRecord.activationParamsCount)
      f32Pool.append(contentsOf: activation.parameters)
    }
    record.put(try checkedIndex(u32Pool.count, "pool entries"), at: TMF.NodeRecord.inputsStart)
    record.put(try checkedIndex(node.inputs.count, "inputs"), at: TMF.NodeRecord.inputCount)
    for input in node.inputs {
      guard let input else { u32Pool.append(TMF.absent); continue }
      guard let t = valueTensor[input] else {
        throw TMFWriteError("\(label): input '\(graph[input].name)' is not defined before the node")
      }
      u32Pool.append(t)
    }
    var outputs: [UInt32] = []
    for output in node.outputs {
      guard let output else { outputs.append(TMF.absent); continue }
      let t = try addTensor(graph[output].name, kind: .activation, type: graph[output].type, data: nil, graph: g)
      valueTensor[output] = t
      outputs.append(t)
    }
    record.put(try checkedIndex(u32Pool.count, "pool entries"), at: TMF.NodeRecord.outputsStart)
    record.put(try checkedIndex(outputs.count, "outputs"), at: TMF.NodeRecord.outputCount)
    u32Pool.append(contentsOf: outputs)
    record.put(try checkedIndex(attributeCount, "attributes"), at: TMF.NodeRecord.attributesStart)
    record.put(UInt32(attributes.count), at: TMF.NodeRecord.attributeCount)
    for (position, attribute) in attributes.enumerated() { try addAttribute(attribute, node: label, graph: subgraphs[position]) }
    graphs[Int(g)].nodes.append(contentsOf: record)
    graphs[Int(g)].nodeCount += 1
    nodeCount += 1
  }

  /// Appends an attribute record; `graph` is the graph index of a subgraph attribute's subgraph.
  private mutating func addAttribute(_ attribute: Attribute, node label: String, graph: UInt32?) throws(TMFWriteError) {
    let what = "\(label): attribute '\(attribute.name)'"
    guard attribute.refAttrName == nil else { throw TMFWriteError("\(what) refers to a function attribute; .tmf has no functions") }
    var record = [UInt8](repeating: 0, count: TMF.AttributeRecord.size)
    record.put(string(attribute.name), at: TMF.AttributeRecord.name)
    let type: TMF.AttributeType
    var value: UInt64 = 0
    var count = 0
    switch attribute.value {
    case .int(let v): (type, value) = (.int, UInt64(bitPattern: v))
    case .float(let v): (type, value) = (.float, UInt64(v.bitPattern))
    case .string(let bytes):
      guard let s = String(validating: bytes, as: UTF8.self) else { throw TMFWriteError("\(what) is not UTF-8") }
      (type, value) = (.string, UInt64(string(s)))
    case .tensor(let t):
      type = .tensor
      value = UInt64(try addTensor("", kind: .attribute, type: nil, data: t))
    case .ints(let vs):
      (type, value, count) = (.ints, UInt64(i64Pool.count), vs.count)
      i64Pool.append(contentsOf: vs)
    case .floats(let vs):
      (type, value, count) = (.floats, UInt64(f32Pool.count), vs.count)
      f32Pool.append(contentsOf: vs)
    case .strings(let list):
      var indices: [UInt32] = []
      for bytes in list {
        guard let s = String(validating: bytes, as: UTF8.self) else { throw TMFWriteError("\(what) is not UTF-8") }
        indices.append(string(s))
      }
      (type, value, count) = (.strings, UInt64(u32Pool.count), list.count)
      u32Pool.append(contentsOf: indices)
    case .graph:
      guard let graph else { throw TMFWriteError("\(what): the subgraph was not written") }
      (type, value) = (.graph, UInt64(graph))
    case .graphs:
      throw TMFWriteError("\(what) holds a list of subgraphs; .tmf stores single subgraphs (If) only")
    default:
      throw TMFWriteError("\(what) has a type .tmf does not store (tensors, sparse tensors, types)")
    }
    record.put(type.rawValue, at: TMF.AttributeRecord.type)
    record.put(value, at: TMF.AttributeRecord.value)
    record.put(try checkedIndex(count, "list elements"), at: TMF.AttributeRecord.count)
    attributeRecords.append(contentsOf: record)
    attributeCount += 1
  }

  // MARK: Graph and metadata

  private mutating func addGraphSection(_ model: Model, _ valueTensor: [ValueID: UInt32]) throws(TMFWriteError) {
    let graph = model.graph
    var header = [UInt8](repeating: 0, count: TMF.GraphRecord.size)
    header.put(string(graph.name), at: TMF.GraphRecord.name)
    let inputs = graph.inputs.compactMap { valueTensor[$0] }
    var outputs: [UInt32] = []
    for output in graph.outputs {
      guard let t = valueTensor[output] else { throw TMFWriteError("graph output '\(graph[output].name)' is not produced") }
      outputs.append(t)
    }
    header.put(UInt32(inputs.count), at: TMF.GraphRecord.inputCount)
    header.put(UInt32(outputs.count), at: TMF.GraphRecord.outputCount)
    header.put(UInt32(model.opsetImports.count), at: TMF.GraphRecord.opsetCount)
    header.put(model.irVersion, at: TMF.GraphRecord.irVersion)
    for t in inputs + outputs { header.append(littleEndian: t) }
    for opset in model.opsetImports {
      header.append(littleEndian: string(opset.domain))
      header.append(littleEndian: UInt32(0))
      header.append(littleEndian: opset.version)
    }
    graphSection = header
  }

  private mutating func addMetadata(_ entries: [MetadataEntry]) {
    var bytes: [UInt8] = []
    bytes.append(littleEndian: UInt32(entries.count))
    bytes.append(littleEndian: UInt32(0))
    for entry in entries {
      bytes.append(littleEndian: string(entry.key))
      bytes.append(littleEndian: string(entry.value))
    }
    metadataSection = bytes
  }

  // MARK: Assembly

  private static func table(_ records: [UInt8], count: Int, recordSize: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(records.count + TMF.tableHeaderSize)
    bytes.append(littleEndian: UInt32(count))
    bytes.append(littleEndian: UInt32(recordSize))
    bytes.append(contentsOf: records)
    return bytes
  }

  private func stringSection() -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.append(littleEndian: UInt32(strings.count))
    bytes.append(littleEndian: UInt32(0))
    var blob: [UInt8] = []
    for s in strings {
      bytes.append(littleEndian: UInt32(blob.count))
      bytes.append(littleEndian: UInt32(s.utf8.count))
      blob.append(contentsOf: s.utf8)
    }
    return bytes + blob
  }

  private mutating func finish() throws(TMFWriteError) {
    _ = try checkedIndex(strings.count, "strings")
    _ = try checkedIndex(u32Pool.count, "pool entries")
    _ = try checkedIndex(i64Pool.count, "pool entries")
    _ = try checkedIndex(f32Pool.count, "pool entries")
    var nodeRecords: [UInt8] = []
    var subgraphRecords: [UInt8] = []
    for (g, entry) in graphs.enumerated() {
      if g > 0 {
        var record = entry.record
        record.put(UInt32(nodeRecords.count / TMF.NodeRecord.size), at: TMF.SubgraphRecord.nodesStart)
        record.put(UInt32(entry.nodeCount), at: TMF.SubgraphRecord.nodeCount)
        subgraphRecords.append(contentsOf: record)
      }
      nodeRecords.append(contentsOf: entry.nodes)
    }
    var u32Bytes: [UInt8] = [], i64Bytes: [UInt8] = [], f32Bytes: [UInt8] = []
    for v in u32Pool { u32Bytes.append(littleEndian: v) }
    for v in i64Pool { i64Bytes.append(littleEndian: v) }
    for v in f32Pool { f32Bytes.append(littleEndian: v.bitPattern) }
    sections = [
      (.strings, stringSection()),
      (.tensors, Self.table(tensorRecords, count: tensorCount, recordSize: TMF.TensorRecord.size)),
      (.nodes, Self.table(nodeRecords, count: nodeCount, recordSize: TMF.NodeRecord.size)),
      (.attributes, Self.table(attributeRecords, count: attributeCount, recordSize: TMF.AttributeRecord.size)),
      (.graph, graphSection),
      (.u32Pool, u32Bytes), (.i64Pool, i64Bytes), (.f32Pool, f32Bytes),
      (.metadata, metadataSection),
    ]
    if graphs.count > 1 {  // a file without subgraphs stays readable by 1.1 readers
      sections.append((.subgraphs, Self.table(subgraphRecords, count: graphs.count - 1, recordSize: TMF.SubgraphRecord.size)))
    }
    var offset = TMF.headerSize + (sections.count + 1) * TMF.sectionEntrySize
    for s in sections { offset = TMF.aligned(offset, to: TMF.sectionAlignment)! + s.bytes.count }
    dataOffset = TMF.aligned(offset, to: TMF.dataAlignment)!
    var crc: UInt32 = 0
    var end = 0
    let zeros = [UInt8](repeating: 0, count: TMF.dataAlignment)
    for (tensorOffset, tensor) in dataTensors {
      zeros.withUnsafeBytes { crc = tmfCRC32(UnsafeRawBufferPointer(rebasing: $0[0..<(tensorOffset - end)]), continuing: crc) }
      crc = tmfCRC32(tensor.storedBytes, continuing: crc)
      end = tensorOffset + tensor.byteCount
    }
    dataCRC = crc
    summary.fileSize = dataOffset + dataLength
    summary.tensorCount = tensorCount
    summary.nodeCount = nodeCount
  }

  /// The header and section table.
  private func headerBytes() -> [UInt8] {
    var table: [UInt8] = []
    var offset = TMF.headerSize + (sections.count + 1) * TMF.sectionEntrySize
    func entry(_ kind: TMF.SectionKind, _ offset: Int, _ length: Int, _ crc: UInt32) {
      var e = [UInt8](repeating: 0, count: TMF.sectionEntrySize)
      e.put(kind.rawValue, at: TMF.SectionEntry.kind)
      e.put(TMF.sectionRequired, at: TMF.SectionEntry.flags)
      e.put(UInt64(offset), at: TMF.SectionEntry.offset)
      e.put(UInt64(length), at: TMF.SectionEntry.length)
      e.put(crc, at: TMF.SectionEntry.crc)
      table.append(contentsOf: e)
    }
    for s in sections {
      offset = TMF.aligned(offset, to: TMF.sectionAlignment)!
      entry(s.kind, offset, s.bytes.count, s.bytes.withUnsafeBytes { tmfCRC32($0) })
      offset += s.bytes.count
    }
    entry(.data, dataOffset, dataLength, dataCRC)
    var header = [UInt8](repeating: 0, count: TMF.headerSize)
    for (i, b) in TMF.magic.enumerated() { header[i] = b }
    header.put(TMF.versionMajor, at: TMF.Header.versionMajor)
    header.put(TMF.versionMinor, at: TMF.Header.versionMinor)
    header.put(UInt32(0), at: TMF.Header.flags)
    header.put(UInt32(TMF.headerSize), at: TMF.Header.headerSize)
    header.put(UInt32(sections.count + 1), at: TMF.Header.sectionCount)
    header.put(UInt64(TMF.headerSize), at: TMF.Header.sectionTableOffset)
    header.put(UInt64(summary.fileSize), at: TMF.Header.fileSize)
    header.put(table.withUnsafeBytes { tmfCRC32($0) }, at: TMF.Header.sectionTableCRC)
    header.put(header.withUnsafeBytes { tmfCRC32(UnsafeRawBufferPointer(rebasing: $0[0..<TMF.Header.headerCRC])) }, at: TMF.Header.headerCRC)
    return header + table
  }

  /// Hands the file's bytes, in order, to `sink`.
  func emit(_ sink: (UnsafeRawBufferPointer) -> Void) {
    var position = 0
    func write(_ bytes: [UInt8]) {
      bytes.withUnsafeBytes { sink($0) }
      position += bytes.count
    }
    func pad(to offset: Int) {
      if offset > position { write([UInt8](repeating: 0, count: offset - position)) }
    }
    write(headerBytes())
    for s in sections {
      pad(to: TMF.aligned(position, to: TMF.sectionAlignment)!)
      write(s.bytes)
    }
    pad(to: dataOffset)
    for (tensorOffset, tensor) in dataTensors {
      pad(to: dataOffset + tensorOffset)
      sink(tensor.storedBytes)
      position += tensor.byteCount
    }
  }
}
