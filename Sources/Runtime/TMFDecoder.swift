import Graph

/// Turns validated `.tmf` sections into a `Model`, checking every index, shape, length and the
/// order of definitions (a node reads only tensors defined before it: the graph is acyclic).
struct TMFDecoder {
  private let sections: [TMF.SectionKind: TMFRegion]
  private let mapping: TMFMapping
  private var strings: [String] = []
  private let u32Pool: TMFRegion
  private let i64Pool: TMFRegion
  private let f32Pool: TMFRegion
  private let data: TMFRegion
  private(set) var metadata: [MetadataEntry] = []
  /// The subgraph records (graph `i + 1` is `subgraphs[i]`), which graphs an attribute already
  /// holds, and the graphs being read (the main graph, then each nested subgraph).
  private var subgraphs: [SubgraphInfo] = []
  private var held: [Bool] = []
  private var reading: [Int] = []

  init(sections: [TMF.SectionKind: TMFRegion], mapping: TMFMapping) throws(TMFProblem) {
    self.sections = sections
    self.mapping = mapping
    func region(_ kind: TMF.SectionKind) -> TMFRegion {
      sections[kind] ?? TMFRegion(bytes: UnsafeRawBufferPointer(start: nil, count: 0), fileOffset: 0, name: "section '\(kind.name)'")
    }
    u32Pool = region(.u32Pool)
    i64Pool = region(.i64Pool)
    f32Pool = region(.f32Pool)
    data = region(.data)
    for (pool, size) in [(u32Pool, 4), (i64Pool, 8), (f32Pool, 4)] where pool.count % size != 0 {
      throw TMFProblem("\(pool.name): length: \(pool.count) is not a multiple of \(size)")
    }
    try readStrings(region(.strings))
  }

  // MARK: Strings, pools, tables

  private mutating func readStrings(_ section: TMFRegion) throws(TMFProblem) {
    let count = Int(try section.u32(0, "count"))
    let blobStart = try tmfAdd(8, try tmfMultiply(count, 8, "\(section.name): count"), section.name)
    guard blobStart <= section.count else {
      throw TMFProblem("\(section.name): count: \(count) strings do not fit in the section (\(section.count) bytes)")
    }
    let blob = try section.slice(blobStart, section.count - blobStart, "string bytes")
    strings.reserveCapacity(count)
    for i in 0..<count {
      let offset = Int(try section.u32(8 + 8 * i, "string \(i) offset"))
      let length = Int(try section.u32(12 + 8 * i, "string \(i) length"))
      guard offset <= blob.count, blob.count - offset >= length else {
        throw TMFProblem("\(section.name): string \(i): bytes \(offset)..+\(length) lie past the end of the section")
      }
      guard let s = String(validating: UnsafeRawBufferPointer(rebasing: blob.bytes[offset..<(offset + length)]), as: UTF8.self) else {
        throw TMFProblem("\(section.name): string \(i) is not valid UTF-8")
      }
      strings.append(s)
    }
  }

  private func string(_ index: UInt32, _ what: @autoclosure () -> String) throws(TMFProblem) -> String {
    guard Int(index) < strings.count else {
      throw TMFProblem("\(what()): string index \(index) is out of range (\(strings.count) strings)")
    }
    return strings[Int(index)]
  }

  /// Checks that `[start, start + count)` lies in a pool of `size`-byte elements.
  private func poolRange(_ pool: TMFRegion, _ size: Int, _ start: UInt32, _ count: Int, _ what: @autoclosure () -> String) throws(TMFProblem) -> Int {
    let first = Int(start)
    guard count >= 0, first <= pool.count / size, pool.count / size - first >= count else {
      throw TMFProblem("\(what()): entries \(start)..+\(count) are out of range of the \(pool.name) (\(pool.count / size) entries)")
    }
    return first * size
  }

  private func u32s(_ start: UInt32, _ count: Int, _ what: @autoclosure () -> String) throws(TMFProblem) -> [UInt32] {
    let base = try poolRange(u32Pool, 4, start, count, what())
    var out: [UInt32] = []
    out.reserveCapacity(count)
    for i in 0..<count { out.append(try u32Pool.u32(base + 4 * i, what())) }
    return out
  }

  private func i64s(_ start: UInt32, _ count: Int, _ what: @autoclosure () -> String) throws(TMFProblem) -> [Int64] {
    let base = try poolRange(i64Pool, 8, start, count, what())
    var out: [Int64] = []
    out.reserveCapacity(count)
    for i in 0..<count { out.append(try i64Pool.i64(base + 8 * i, what())) }
    return out
  }

  private func f32s(_ start: UInt32, _ count: Int, _ what: @autoclosure () -> String) throws(TMFProblem) -> [Float] {
    let base = try poolRange(f32Pool, 4, start, count, what())
    var out: [Float] = []
    out.reserveCapacity(count)
    for i in 0..<count { out.append(Float(bitPattern: try f32Pool.u32(base + 4 * i, what()))) }
    return out
  }

  /// A table's records: `count`, the record size (at least `minimum`), and the records region.
  private func table(_ kind: TMF.SectionKind, minimum: Int) throws(TMFProblem) -> (Int, Int, TMFRegion) {
    guard let section = sections[kind] else {
      return (0, minimum, TMFRegion(bytes: UnsafeRawBufferPointer(start: nil, count: 0), fileOffset: 0, name: kind.name))
    }
    let count = Int(try section.u32(0, "count"))
    let size = Int(try section.u32(4, "record_size"))
    guard size >= minimum else { throw TMFProblem("\(section.name): record_size: \(size) is smaller than \(minimum)") }
    let length = try tmfMultiply(count, size, "\(section.name): count")
    guard section.count - TMF.tableHeaderSize >= length else {
      throw TMFProblem("\(section.name): count: \(count) records of \(size) bytes do not fit in the section (\(section.count) bytes)")
    }
    return (count, size, try section.slice(TMF.tableHeaderSize, length, "records"))
  }

  // MARK: Tensors

  struct TensorInfo {
    var name: String
    var kind: TMF.TensorKind
    var type: ValueType?
    var data: Tensor?
    /// The graph it belongs to (1.2): 0 the main graph, `i + 1` subgraph record `i`.
    var graph: Int = 0
  }

  private func tensors() throws(TMFProblem) -> [TensorInfo] {
    let (count, size, records) = try table(.tensors, minimum: TMF.TensorRecord.size)
    var out: [TensorInfo] = []
    out.reserveCapacity(count)
    for i in 0..<count {
      let base = i * size
      let nameIndex = try records.u32(base + TMF.TensorRecord.name, "tensor \(i) name")
      let where_ = "section 'tensors': record \(i)"
      let name = try string(nameIndex, "\(where_): field name")
      let what = "\(where_) ('\(name)')"
      func field(_ offset: Int, _ f: String) throws(TMFProblem) -> UInt32 { try records.u32(base + offset, "\(what) \(f)") }
      guard let kind = TMF.TensorKind(rawValue: try field(TMF.TensorRecord.kind, "kind")) else {
        throw TMFProblem("\(what): field kind: \(try field(TMF.TensorRecord.kind, "kind")) is not a tensor kind")
      }
      let dtypeCode = try records.i32(base + TMF.TensorRecord.dtype, "\(what) dtype")
      let dtype = DType(rawValue: dtypeCode)
      guard dtypeCode == 0 || TMF.supportedDTypes.contains(dtype) else {
        throw TMFProblem("\(what): field dtype: \(dtypeCode) is not an element type .tmf 1.0 stores")
      }
      let encodingCode = try field(TMF.TensorRecord.encoding, "encoding")
      guard let encoding = TMF.Encoding(rawValue: encodingCode) else {
        throw TMFProblem("\(what): field encoding: \(encodingCode) is not a defined encoding")
      }
      guard encoding.isSupported else {
        throw TMFProblem("\(what): field encoding: \(encoding.name) is reserved and not read by this version")
      }
      let quantAxis = try records.i32(base + TMF.TensorRecord.quantAxis, "\(what) quant_axis")
      let quantCount = try field(TMF.TensorRecord.quantCount, "quant_count")
      var quantization: TMFQuantization? = nil
      if encoding == .raw {
        guard quantAxis == -1, quantCount == 0 else {
          throw TMFProblem("\(what): field quant_count: raw tensors have no quantization parameters (axis -1, count 0)")
        }
      } else {
        guard kind == .constant else { throw TMFProblem("\(what): field encoding: only constants may be \(encoding.name)-encoded") }
        guard dtypeCode == DType.float.rawValue else {
          throw TMFProblem("\(what): field dtype: \(encoding.name)-encoded tensors must be float (1), not \(dtypeCode)")
        }
        quantization = TMFQuantization(
          encoding: encoding, axis: Int(quantAxis), count: Int(quantCount),
          scaleStart: try field(TMF.TensorRecord.scaleStart, "scale_start"),
          zeroPointStart: try field(TMF.TensorRecord.zeroPointStart, "zero_point_start"))
      }
      let rankField = try field(TMF.TensorRecord.rank, "rank")
      var dims: [Dim]? = nil
      if rankField != TMF.absent {
        let raw = try i64s(try field(TMF.TensorRecord.dimsStart, "dims_start"), Int(rankField), "\(what): field dims_start")
        var list: [Dim] = []
        for v in raw {
          if v >= 0 {
            list.append(.value(try tmfInt(UInt64(v), "\(what): dim")))
          } else if v == TMF.unknownDim {
            list.append(.unknown)
          } else {
            let index = -(v + 2)
            guard index <= Int64(UInt32.max) else { throw TMFProblem("\(what): field dims: symbolic dim \(v) is out of range") }
            list.append(.param(try string(UInt32(index), "\(what): symbolic dim")))
          }
        }
        dims = list
      }
      let offset = try tmfInt(try records.u64(base + TMF.TensorRecord.dataOffset, "\(what) data_offset"), "\(what): field data_offset")
      let length = try tmfInt(try records.u64(base + TMF.TensorRecord.dataLength, "\(what) data_length"), "\(what): field data_length")
      var info = TensorInfo(name: name, kind: kind, type: dtypeCode == 0 ? nil : .tensor(dtype, shape: dims), data: nil)
      info.graph = Int(try field(TMF.TensorRecord.graph, "graph"))
      if kind == .activation {
        guard offset == 0, length == 0 else { throw TMFProblem("\(what): field data_length: a node output has no data") }
      } else if kind == .constant || kind == .attribute || length > 0 || offset > 0 {
        info.data = try tensorData(what, dtype: dtypeCode == 0 ? nil : dtype, dims: dims, offset: offset, length: length, quantization: quantization)
      }
      out.append(info)
    }
    return out
  }

  /// The data of a tensor, checked, adopting the mapped bytes in place.
  private func tensorData(
    _ what: String, dtype: DType?, dims: [Dim]?, offset: Int, length: Int, quantization: TMFQuantization? = nil
  ) throws(TMFProblem) -> Tensor {
    guard let dtype else { throw TMFProblem("\(what): field dtype: a tensor with data needs an element type") }
    guard let dims else { throw TMFProblem("\(what): field rank: a tensor with data needs a shape") }
    let shape = dims.compactMap(\.value)
    guard shape.count == dims.count else { throw TMFProblem("\(what): field dims: a tensor with data needs every extent") }
    guard let elements = checkedElementCount(shape), let bytes = dtype.byteCount(elements: elements) else {
      throw TMFProblem("\(what): field dims: the shape \(shape) overflows")
    }
    var parameters: [Float] = [], zeroPoints: [Int64]? = nil
    if let q = quantization {
      try q.checkParameters(what, shape: shape)
      parameters = try f32s(q.scaleStart, q.count, "\(what): field scale_start")
      if q.zeroPointStart != TMF.absent { zeroPoints = try i64s(q.zeroPointStart, q.count, "\(what): field zero_point_start") }
      let encodedBytes = TMF.encodedByteCount(q.encoding, elements: elements, quantCount: q.count)
      guard encodedBytes == length else {
        throw TMFProblem("\(what): field data_length: \(length) bytes, but shape \(shape) as \(q.encoding.name) takes \(encodedBytes.map(String.init) ?? "more than the address space")")
      }
    } else {
      guard bytes == length else {
        throw TMFProblem("\(what): field data_length: \(length) bytes, but shape \(shape) of \(dtype) takes \(bytes)")
      }
    }
    let end = try tmfAdd(offset, length, "\(what): field data_offset")
    guard end <= data.count else {
      throw TMFProblem("\(what): field data_offset: bytes \(offset)..<\(end) lie past the end of the data section (\(data.count) bytes)")
    }
    let fileOffset = data.fileOffset + offset
    guard fileOffset % TMF.dataAlignment == 0 else {
      throw TMFProblem("\(what): field data_offset: file offset \(fileOffset) is not \(TMF.dataAlignment)-byte aligned")
    }
    if let q = quantization {  // decoded once, here: the runtime computes in float32
      let source = UnsafeRawBufferPointer(rebasing: mapping.bytes[fileOffset..<(fileOffset + length)])
      return try q.decode(source, shape: shape, parameters: parameters, zeroPoints: zeroPoints, what)
    }
    let storage = length == 0 ? TensorStorage(copying: UnsafeRawBufferPointer(start: nil, count: 0)) : mapping.storage(fileOffset..<(fileOffset + length))
    guard let tensor = Tensor(dtype: dtype, shape: shape, storage: storage) else {
      throw TMFProblem("\(what): field data_length: does not match the shape")
    }
    return tensor
  }
}

/// A subgraph record (docs/tmf.md, "Subgraphs"), its node range checked.
struct SubgraphInfo {
  var name: String
  var parent: Int
  var nodes: Range<Int>
  var inputs: (start: UInt32, count: Int)
  var outputs: (start: UInt32, count: Int)
  var outer: (start: UInt32, count: Int)
  /// `section 'subgraphs': record i (graph i + 1, 'name')`, for errors.
  var what: String
}

extension TMFDecoder {
  // MARK: Graph

  mutating func model() throws(TMFProblem) -> Model {
    let tensors = try tensors()
    guard let graphSection = sections[.graph] else { throw TMFProblem("section table: the required section 'graph' is missing") }
    let g = graphSection
    let name = try string(try g.u32(TMF.GraphRecord.name, "name"), "\(g.name): field name")
    let inputCount = Int(try g.u32(TMF.GraphRecord.inputCount, "input_count"))
    let outputCount = Int(try g.u32(TMF.GraphRecord.outputCount, "output_count"))
    let opsetCount = Int(try g.u32(TMF.GraphRecord.opsetCount, "opset_count"))
    var inputs: [UInt32] = [], outputs: [UInt32] = []
    for i in 0..<inputCount { inputs.append(try g.u32(TMF.GraphRecord.size + 4 * i, "input \(i)")) }
    let outputsBase = TMF.GraphRecord.size + 4 * inputCount
    for i in 0..<outputCount { outputs.append(try g.u32(outputsBase + 4 * i, "output \(i)")) }
    let mainNodes = try readSubgraphs(tensors)
    reading = [0]
    let graph = try decodeGraph(
      0, name: name, inputs: inputs, outputs: outputs, outer: [], nodes: mainNodes, tensors: tensors, enclosing: [:],
      what: "section 'graph'")
    if let unheld = held.indices.dropFirst().first(where: { !held[$0] }) {
      throw TMFProblem("\(subgraphs[unheld - 1].what): no attribute holds the graph (a subgraph must be held by exactly one If)")
    }
    var model = Model(graph: graph)
    model.irVersion = try g.i64(TMF.GraphRecord.irVersion, "ir_version")
    let opsetsBase = outputsBase + 4 * outputCount
    for i in 0..<opsetCount {
      let base = opsetsBase + TMF.GraphRecord.opsetSize * i
      let domain = try string(try g.u32(base, "opset \(i) domain"), "section 'graph': opset \(i) domain")
      model.opsetImports.append(OpsetImport(domain: domain, version: try g.i64(base + 8, "opset \(i) version")))
    }
    try readMetadata()
    model.producerName = metadata.first { $0.key == "producer" }?.value ?? ""
    model.producerVersion = metadata.first { $0.key == "producer_version" }?.value ?? ""
    return model
  }

  /// Reads the subgraph records and checks what can be checked before any graph is built: each
  /// parent is an earlier graph (so graphs cannot contain themselves), the nesting depth, the node
  /// ranges (the main graph's nodes, then each subgraph's, in order, covering the nodes section),
  /// and every tensor's graph field. Returns the main graph's node range.
  private mutating func readSubgraphs(_ tensors: [TensorInfo]) throws(TMFProblem) -> Range<Int> {
    let (nodeCount, _, _) = try table(.nodes, minimum: TMF.NodeRecord.size)
    let (count, size, records) = try table(.subgraphs, minimum: TMF.SubgraphRecord.size)
    var depth = [0]
    var mainEnd = nodeCount
    var end = 0
    for i in 0..<count {
      let base = i * size
      let index = i + 1
      func field(_ offset: Int, _ f: String) throws(TMFProblem) -> UInt32 { try records.u32(base + offset, "subgraph \(i) \(f)") }
      let name = try string(try field(TMF.SubgraphRecord.name, "name"), "section 'subgraphs': record \(i): field name")
      let what = "section 'subgraphs': record \(i) (graph \(index), '\(name)')"
      let parent = Int(try field(TMF.SubgraphRecord.parent, "parent"))
      guard parent != index else { throw TMFProblem("\(what): field parent: a graph may not contain itself") }
      guard parent < index else {
        throw TMFProblem("\(what): field parent: graph \(parent) is not an earlier graph (a graph's parent comes before it)")
      }
      guard depth[parent] < TMF.maxGraphDepth else {
        throw TMFProblem("\(what): field parent: the graph is nested \(depth[parent] + 1) levels deep; .tmf allows at most \(TMF.maxGraphDepth)")
      }
      depth.append(depth[parent] + 1)
      let start = Int(try field(TMF.SubgraphRecord.nodesStart, "nodes_start"))
      let nodes = Int(try field(TMF.SubgraphRecord.nodeCount, "node_count"))
      if i == 0 {
        guard start <= nodeCount else {
          throw TMFProblem("\(what): field nodes_start: \(start) is past the \(nodeCount) node records")
        }
        mainEnd = start
        end = start
      }
      guard start == end else {
        throw TMFProblem("\(what): field nodes_start: \(start), but the previous graph's nodes end at record \(end) (each graph's nodes follow the previous graph's)")
      }
      guard nodes <= nodeCount - end else {
        throw TMFProblem("\(what): field node_count: records \(start)..+\(nodes) are out of range (\(nodeCount) node records)")
      }
      end += nodes
      func list(_ startField: Int, _ countField: Int, _ f: String) throws(TMFProblem) -> (start: UInt32, count: Int) {
        (try field(startField, "\(f)_start"), Int(try field(countField, "\(f)_count")))
      }
      subgraphs.append(
        SubgraphInfo(
          name: name, parent: parent, nodes: start..<end,
          inputs: try list(TMF.SubgraphRecord.inputsStart, TMF.SubgraphRecord.inputCount, "inputs"),
          outputs: try list(TMF.SubgraphRecord.outputsStart, TMF.SubgraphRecord.outputCount, "outputs"),
          outer: try list(TMF.SubgraphRecord.outerStart, TMF.SubgraphRecord.outerCount, "outer"), what: what))
    }
    if count > 0, end != nodeCount {
      throw TMFProblem("\(subgraphs[count - 1].what): field node_count: the last graph's nodes end at record \(end), but there are \(nodeCount) node records")
    }
    held = [Bool](repeating: false, count: count + 1)
    for (t, info) in tensors.enumerated() {
      guard info.graph <= count, info.kind != .attribute || info.graph == 0 else {
        throw TMFProblem("section 'tensors': record \(t) ('\(info.name)'): field graph: \(info.graph) is out of range (\(count + 1) graphs; 0 for attribute tensors)")
      }
    }
    return 0..<mainEnd
  }

  /// Builds graph `g` from its lists (tensor indices) and node records. `enclosing` is the enclosing
  /// graph's values at the node holding `g` (empty for the main graph): the only tensors `g`'s
  /// outer references may name.
  private mutating func decodeGraph(
    _ g: Int, name: String, inputs: [UInt32], outputs: [UInt32], outer: [UInt32], nodes: Range<Int>, tensors: [TensorInfo],
    enclosing: [Int: ValueID], what: String
  ) throws(TMFProblem) -> Graph {
    var graph = Graph(name: name)
    var values: [Int: ValueID] = [:]
    func tensorIndex(_ raw: UInt32, _ what: String) throws(TMFProblem) -> Int {
      guard Int(raw) < tensors.count else { throw TMFProblem("\(what): tensor index \(raw) is out of range (\(tensors.count) tensors)") }
      return Int(raw)
    }
    for (i, raw) in outer.enumerated() {
      let w = "\(what): outer reference \(i)"
      let t = try tensorIndex(raw, w)
      guard values[t] == nil else { throw TMFProblem("\(w): tensor \(t) ('\(tensors[t].name)') is listed twice") }
      guard enclosing[t] != nil else {
        throw TMFProblem("\(w): tensor \(t) ('\(tensors[t].name)') is not defined in the enclosing graph before the node holding this graph")
      }
      values[t] = try add(w) { () throws(GraphError) in
        try graph.addOuterReference(name: tensors[t].name, type: tensors[t].type ?? tensors[t].data.map(Self.type(of:)))
      }
    }
    // Inputs, in order; every input tensor of the graph exactly once.
    for (i, raw) in inputs.enumerated() {
      let w = "\(what): input \(i)"
      let t = try tensorIndex(raw, w)
      guard tensors[t].kind == .input, tensors[t].graph == g, values[t] == nil else {
        throw TMFProblem("\(w): tensor \(t) ('\(tensors[t].name)') is not an input tensor\(g == 0 ? "" : " of this graph"), or is listed twice")
      }
      values[t] = try add(w) { () throws(GraphError) in
        try graph.addInput(name: tensors[t].name, type: tensors[t].type ?? tensors[t].data.map(Self.type(of:)), default: tensors[t].data)
      }
    }
    for (t, info) in tensors.enumerated() where info.graph == g {
      if info.kind == .input, values[t] == nil {
        throw TMFProblem("section 'tensors': record \(t) ('\(info.name)'): an input tensor not listed in the \(g == 0 ? "graph's" : "graph \(g)'s") inputs")
      }
      if info.kind == .constant, let data = info.data {
        values[t] = try add("section 'tensors': record \(t)") { () throws(GraphError) in try graph.addInitializer(name: info.name, data) }
      }
    }
    try addNodes(nodes, of: g, to: &graph, tensors: tensors, values: &values)
    for (i, raw) in outputs.enumerated() {
      let w = "\(what): output \(i)"
      let t = try tensorIndex(raw, w)
      guard let v = values[t] else {
        throw TMFProblem("\(w): tensor \(t) ('\(tensors[t].name)') is never defined" + (g == 0 ? "" : " in this graph or among its outer references"))
      }
      graph.addOutput(v)
    }
    return graph
  }

  /// The subgraph `raw` held by an attribute of a node of graph `holder`, built with the holder's
  /// values so far as its enclosing scope.
  private mutating func subgraph(
    _ raw: UInt64, heldBy holder: Int, enclosing: [Int: ValueID], tensors: [TensorInfo], field: String
  ) throws(TMFProblem) -> Graph {
    guard raw >= 1, raw <= UInt64(subgraphs.count) else {
      throw TMFProblem("\(field): graph index \(raw) is out of range (subgraphs are graphs 1…\(subgraphs.count); 0 is the main graph)")
    }
    let j = Int(raw)
    guard !reading.contains(j) else {
      throw TMFProblem("\(field): graph \(j) contains itself (it is held by a node of graph \(holder), which it encloses): a graph may not contain itself")
    }
    let info = subgraphs[j - 1]
    guard info.parent == holder else {
      throw TMFProblem("\(field): graph \(j)'s parent is graph \(info.parent), but a node of graph \(holder) holds it")
    }
    guard !held[j] else { throw TMFProblem("\(field): graph \(j) is already held by another attribute") }
    guard reading.count <= TMF.maxGraphDepth else {  // the parent fields were checked; this bounds the recursion regardless
      throw TMFProblem("\(field): graph \(j) is nested deeper than \(TMF.maxGraphDepth) levels")
    }
    held[j] = true
    reading.append(j)
    defer { reading.removeLast() }
    let inputs = try u32s(info.inputs.start, info.inputs.count, "\(info.what): field inputs_start")
    let outputs = try u32s(info.outputs.start, info.outputs.count, "\(info.what): field outputs_start")
    let outer = try u32s(info.outer.start, info.outer.count, "\(info.what): field outer_start")
    return try decodeGraph(
      j, name: info.name, inputs: inputs, outputs: outputs, outer: outer, nodes: info.nodes, tensors: tensors, enclosing: enclosing,
      what: info.what)
  }

  private static func type(of tensor: Tensor) -> ValueType { .tensor(tensor.dtype, shape: tensor.shape.map { .value($0) }) }

  private func add<T>(_ what: String, _ body: () throws(GraphError) -> T) throws(TMFProblem) -> T {
    do { return try body() } catch { throw TMFProblem("\(what): \(error.description)") }
  }

  private mutating func addNodes(
    _ nodes: Range<Int>, of g: Int, to graph: inout Graph, tensors: [TensorInfo], values: inout [Int: ValueID]
  ) throws(TMFProblem) {
    let (_, size, records) = try table(.nodes, minimum: TMF.NodeRecord.size)
    let (attributeCount, attributeSize, attributeRecords) = try table(.attributes, minimum: TMF.AttributeRecord.size)
    for i in nodes {
      let base = i * size
      func field(_ offset: Int, _ f: String) throws(TMFProblem) -> UInt32 { try records.u32(base + offset, "node \(i) \(f)") }
      let nodeName = try string(try field(TMF.NodeRecord.name, "name"), "section 'nodes': record \(i): field name")
      let what = "section 'nodes': record \(i) ('\(nodeName)')"
      let code = try field(TMF.NodeRecord.opCode, "op_code")
      guard let opType = TMF.opType(of: code) else {
        throw TMFProblem("\(what): field op_code: unknown op code \(code) (this reader knows 1–\(TMF.opCodes.count); a newer file?)")
      }
      var attributes: [Attribute] = []
      var fusedAttributes: [Attribute] = []
      var domain = ""
      let activationCode = Int(try field(TMF.NodeRecord.activation, "activation"))
      if activationCode != 0 {
        guard activationCode < TMF.activationCodes.count else {
          throw TMFProblem("\(what): field activation: unknown activation code \(activationCode)")
        }
        let paramCount = Int(try field(TMF.NodeRecord.activationParamsCount, "activation_params_count"))
        let params = try f32s(try field(TMF.NodeRecord.activationParamsStart, "activation_params_start"), paramCount, "\(what): field activation_params_start")
        guard FusedActivation.layerOpTypes.contains(opType),
          let activation = FusedActivation(opType: TMF.activationCodes[activationCode], parameters: params)
        else {
          throw TMFProblem("\(what): field activation: \(TMF.activationCodes[activationCode]) with \(paramCount) parameters cannot be fused into \(opType)")
        }
        domain = FusedActivation.domain
        fusedAttributes = activation.attributes
      }
      let inputs = try u32s(try field(TMF.NodeRecord.inputsStart, "inputs_start"), Int(try field(TMF.NodeRecord.inputCount, "input_count")), "\(what): field inputs_start")
      let outputs = try u32s(try field(TMF.NodeRecord.outputsStart, "outputs_start"), Int(try field(TMF.NodeRecord.outputCount, "output_count")), "\(what): field outputs_start")
      let attrStart = Int(try field(TMF.NodeRecord.attributesStart, "attributes_start"))
      let attrCount = Int(try field(TMF.NodeRecord.attributeCount, "attribute_count"))
      guard attrStart <= attributeCount, attributeCount - attrStart >= attrCount else {
        throw TMFProblem("\(what): field attributes_start: records \(attrStart)..+\(attrCount) are out of range (\(attributeCount) attributes)")
      }
      for a in attrStart..<(attrStart + attrCount) {
        attributes.append(try attribute(attributeRecords, a * attributeSize, index: a, node: what, graph: g, values: values, tensors: tensors))
      }
      attributes += fusedAttributes  // as fuse-activation records them: after the layer's own
      var inputValues: [ValueID?] = []
      for (slot, raw) in inputs.enumerated() {
        if raw == TMF.absent { inputValues.append(nil); continue }
        guard Int(raw) < tensors.count else {
          throw TMFProblem("\(what): input \(slot): tensor index \(raw) is out of range (\(tensors.count) tensors)")
        }
        guard let v = values[Int(raw)] else {
          if tensors[Int(raw)].graph != g {
            throw TMFProblem("\(what): input \(slot): tensor \(raw) ('\(tensors[Int(raw)].name)') belongs to graph \(tensors[Int(raw)].graph) and is not among graph \(g)'s outer references")
          }
          throw TMFProblem("\(what): input \(slot): tensor \(raw) ('\(tensors[Int(raw)].name)') is read before it is produced (a cycle, or nodes out of order)")
        }
        inputValues.append(v)
      }
      var outputNames: [String] = []
      for (slot, raw) in outputs.enumerated() {
        if raw == TMF.absent { outputNames.append(""); continue }
        guard Int(raw) < tensors.count, tensors[Int(raw)].kind == .activation, values[Int(raw)] == nil, !tensors[Int(raw)].name.isEmpty else {
          throw TMFProblem("\(what): output \(slot): tensor index \(raw) is out of range, not a node-output tensor, unnamed or produced twice")
        }
        guard tensors[Int(raw)].graph == g else {
          throw TMFProblem("\(what): output \(slot): tensor \(raw) ('\(tensors[Int(raw)].name)') belongs to graph \(tensors[Int(raw)].graph), not to graph \(g) (the node's)")
        }
        outputNames.append(tensors[Int(raw)].name)
      }
      let node = try add(what) { () throws(GraphError) in
        try graph.addNode(opType: opType, domain: domain, name: nodeName, inputs: inputValues, outputs: outputNames, attributes: attributes)
      }
      for (slot, raw) in outputs.enumerated() where raw != TMF.absent {
        guard let v = graph[node].output(slot) else { continue }
        values[Int(raw)] = v
        if let type = tensors[Int(raw)].type { graph.updateValue(v) { $0.type = type } }
      }
    }
  }

  /// Attribute record `index`, of a node (`node`) of graph `g` whose values so far are `values`.
  private mutating func attribute(
    _ records: TMFRegion, _ base: Int, index: Int, node: String, graph g: Int, values: [Int: ValueID], tensors: [TensorInfo]
  ) throws(TMFProblem) -> Attribute {
    let what = "section 'attributes': record \(index) (of \(node))"
    let name = try string(try records.u32(base + TMF.AttributeRecord.name, "\(what) name"), "\(what): field name")
    let typeCode = try records.u32(base + TMF.AttributeRecord.type, "\(what) type")
    let value = try records.u64(base + TMF.AttributeRecord.value, "\(what) value")
    let count = Int(try records.u32(base + TMF.AttributeRecord.count, "\(what) count"))
    let field = "\(what): attribute '\(name)' field value"
    guard let type = TMF.AttributeType(rawValue: typeCode) else {
      throw TMFProblem("\(what): field type: \(typeCode) is not an attribute type")
    }
    func index32() throws(TMFProblem) -> UInt32 {
      guard value <= UInt64(UInt32.max) else { throw TMFProblem("\(field): \(value) is out of range") }
      return UInt32(value)
    }
    switch type {
    case .int: return Attribute(name, .int(Int64(bitPattern: value)))
    case .float: return Attribute(name, .float(Float(bitPattern: UInt32(truncatingIfNeeded: value))))
    case .string: return Attribute(name, .string(Array(try string(try index32(), field).utf8)))
    case .tensor:
      let t = Int(try index32())
      guard t < tensors.count, tensors[t].kind == .attribute, let data = tensors[t].data else {
        throw TMFProblem("\(field): tensor index \(t) is out of range or not an attribute tensor")
      }
      return Attribute(name, .tensor(data))
    case .ints: return Attribute(name, .ints(try i64s(try index32(), count, field)))
    case .floats: return Attribute(name, .floats(try f32s(try index32(), count, field)))
    case .strings:
      var list: [[UInt8]] = []
      for s in try u32s(try index32(), count, field) { list.append(Array(try string(s, field).utf8)) }
      return Attribute(name, .strings(list))
    case .graph:
      return Attribute(name, .graph(try subgraph(value, heldBy: g, enclosing: values, tensors: tensors, field: field)))
    case .graphs, .tensors:
      throw TMFProblem("\(what): field type: attribute '\(name)' has a type .tmf \(TMF.versionMajor).\(TMF.versionMinor) does not store")
    }
  }

  private mutating func readMetadata() throws(TMFProblem) {
    guard let section = sections[.metadata] else { return }
    let count = Int(try section.u32(0, "count"))
    for i in 0..<count {
      let key = try string(try section.u32(8 + 8 * i, "entry \(i) key"), "\(section.name): entry \(i) key")
      let value = try string(try section.u32(12 + 8 * i, "entry \(i) value"), "\(section.name): entry \(i) value")
      metadata.append(MetadataEntry(key: key, value: value))
    }
  }
}
