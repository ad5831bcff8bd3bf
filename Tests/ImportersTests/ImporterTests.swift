import CProtobufC
import Exporters
import Foundation
import Graph
import ONNXProto
import Testing

@testable import Importers

// MARK: - Building ModelProtos through protobuf-c

/// Builds protobuf-c messages in C memory, freed when the builder dies, and packs them into bytes
/// for `ONNXImporter.load(bytes:path:)`.
final class ProtoBuilder {
  private var blocks: [UnsafeMutableRawPointer] = []
  deinit { for block in blocks { free(block) } }

  /// A message set up by its protobuf-c `__init` function, then by `configure`.
  func new<T>(
    _ initialize: (UnsafeMutablePointer<T>) -> Void, _ configure: (UnsafeMutablePointer<T>) -> Void = { _ in }
  ) -> UnsafeMutablePointer<T> {
    let block = calloc(1, MemoryLayout<T>.stride)!
    blocks.append(block)
    let p = block.bindMemory(to: T.self, capacity: 1)
    initialize(p)
    configure(p)
    return p
  }

  func string(_ s: String) -> UnsafeMutablePointer<CChar> {
    let copy = strdup(s)!
    blocks.append(UnsafeMutableRawPointer(copy))
    return copy
  }

  func array<T>(_ items: [T]) -> UnsafeMutablePointer<T>? {
    guard !items.isEmpty else { return nil }
    let block = calloc(items.count, MemoryLayout<T>.stride)!
    blocks.append(block)
    let p = block.bindMemory(to: T.self, capacity: items.count)
    for (i, item) in items.enumerated() { p[i] = item }
    return p
  }

  func strings(_ items: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    array(items.map { Optional(string($0)) })
  }

  func pointers<T>(_ items: [UnsafeMutablePointer<T>]) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
    array(items.map { Optional($0) })
  }

  func bytes(_ data: [UInt8]) -> ProtobufCBinaryData {
    ProtobufCBinaryData(len: data.count, data: array(data))
  }

  /// A tensor with `dims` and `dtype`; `fill` sets its data fields.
  func tensor(
    _ name: String, _ dtype: DType, _ dims: [Int64],
    _ fill: (UnsafeMutablePointer<Onnx__TensorProto>) -> Void = { _ in }
  ) -> UnsafeMutablePointer<Onnx__TensorProto> {
    new(onnx__tensor_proto__init) { (t: UnsafeMutablePointer<Onnx__TensorProto>) in
      t.pointee.name = string(name)
      (t.pointee.has_data_type, t.pointee.data_type) = (1, dtype.rawValue)
      (t.pointee.n_dims, t.pointee.dims) = (dims.count, array(dims))
      fill(t)
    }
  }

  func externalData(_ t: UnsafeMutablePointer<Onnx__TensorProto>, _ entries: [(String, String)]) {
    let items = entries.map { key, value in
      new(onnx__string_string_entry_proto__init) { (e: UnsafeMutablePointer<Onnx__StringStringEntryProto>) in
        (e.pointee.key, e.pointee.value) = (string(key), string(value))
      }
    }
    (t.pointee.n_external_data, t.pointee.external_data) = (items.count, pointers(items))
    (t.pointee.has_data_location, t.pointee.data_location) = (1, ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
  }

  func valueInfo(_ name: String, _ dtype: DType? = nil, _ dims: [Int64] = []) -> UnsafeMutablePointer<
    Onnx__ValueInfoProto
  > {
    new(onnx__value_info_proto__init) { (v: UnsafeMutablePointer<Onnx__ValueInfoProto>) in
      v.pointee.name = string(name)
      guard let dtype else { return }
      let shape = new(onnx__tensor_shape_proto__init) { (s: UnsafeMutablePointer<Onnx__TensorShapeProto>) in
        let items = dims.map { d in
          new(onnx__tensor_shape_proto__dimension__init) {
            (dim: UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension>) in
            (dim.pointee.value_case, dim.pointee.dim_value) = (ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d)
          }
        }
        (s.pointee.n_dim, s.pointee.dim) = (items.count, pointers(items))
      }
      let tensorType = new(onnx__type_proto__tensor__init) { (t: UnsafeMutablePointer<Onnx__TypeProto__Tensor>) in
        (t.pointee.has_elem_type, t.pointee.elem_type, t.pointee.shape) = (1, dtype.rawValue, shape)
      }
      v.pointee.type = new(onnx__type_proto__init) { (t: UnsafeMutablePointer<Onnx__TypeProto>) in
        (t.pointee.value_case, t.pointee.tensor_type) = (ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tensorType)
      }
    }
  }

  func node(
    _ op: String, _ inputs: [String], _ outputs: [String], name: String = "",
    attributes: [UnsafeMutablePointer<Onnx__AttributeProto>] = []
  ) -> UnsafeMutablePointer<Onnx__NodeProto> {
    new(onnx__node_proto__init) { (n: UnsafeMutablePointer<Onnx__NodeProto>) in
      n.pointee.op_type = string(op)
      if !name.isEmpty { n.pointee.name = string(name) }
      (n.pointee.n_input, n.pointee.input) = (inputs.count, strings(inputs))
      (n.pointee.n_output, n.pointee.output) = (outputs.count, strings(outputs))
      (n.pointee.n_attribute, n.pointee.attribute) = (attributes.count, pointers(attributes))
    }
  }

  func graphAttribute(_ name: String, _ graph: UnsafeMutablePointer<Onnx__GraphProto>) -> UnsafeMutablePointer<
    Onnx__AttributeProto
  > {
    new(onnx__attribute_proto__init) { (a: UnsafeMutablePointer<Onnx__AttributeProto>) in
      a.pointee.name = string(name)
      (a.pointee.has_type, a.pointee.type, a.pointee.g) = (1, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH, graph)
    }
  }

  func graph(
    _ name: String = "g", nodes: [UnsafeMutablePointer<Onnx__NodeProto>] = [],
    inputs: [UnsafeMutablePointer<Onnx__ValueInfoProto>] = [],
    outputs: [UnsafeMutablePointer<Onnx__ValueInfoProto>] = [],
    initializers: [UnsafeMutablePointer<Onnx__TensorProto>] = []
  ) -> UnsafeMutablePointer<Onnx__GraphProto> {
    new(onnx__graph_proto__init) { (g: UnsafeMutablePointer<Onnx__GraphProto>) in
      g.pointee.name = string(name)
      (g.pointee.n_node, g.pointee.node) = (nodes.count, pointers(nodes))
      (g.pointee.n_input, g.pointee.input) = (inputs.count, pointers(inputs))
      (g.pointee.n_output, g.pointee.output) = (outputs.count, pointers(outputs))
      (g.pointee.n_initializer, g.pointee.initializer) = (initializers.count, pointers(initializers))
    }
  }

  func model(_ graph: UnsafeMutablePointer<Onnx__GraphProto>) -> UnsafeMutablePointer<Onnx__ModelProto> {
    let opset = new(onnx__operator_set_id_proto__init) { (o: UnsafeMutablePointer<Onnx__OperatorSetIdProto>) in
      (o.pointee.domain, o.pointee.has_version, o.pointee.version) = (string(""), 1, 17)
    }
    return new(onnx__model_proto__init) { (m: UnsafeMutablePointer<Onnx__ModelProto>) in
      (m.pointee.has_ir_version, m.pointee.ir_version) = (1, 8)
      (m.pointee.n_opset_import, m.pointee.opset_import) = (1, pointers([opset]))
      m.pointee.graph = graph
    }
  }

  /// The serialized model.
  func pack(_ model: UnsafeMutablePointer<Onnx__ModelProto>) -> [UInt8] {
    let base = UnsafeRawPointer(model).assumingMemoryBound(to: ProtobufCMessage.self)
    var out = [UInt8](repeating: 0, count: protobuf_c_message_get_packed_size(base))
    let n = out.withUnsafeMutableBufferPointer { protobuf_c_message_pack(base, $0.baseAddress!) }
    return Array(out.prefix(n))
  }

  /// A model whose graph holds just `initializer`, read back by the importer.
  func importInitializer(_ initializer: UnsafeMutablePointer<Onnx__TensorProto>, path: String = "/tmp/t.onnx") throws
    -> Tensor
  {
    let name = text(initializer.pointee.name)
    let g = graph(nodes: [node("Identity", [name], ["y"])], outputs: [valueInfo("y")], initializers: [initializer])
    let imported = try ONNXImporter.load(bytes: pack(model(g)), path: path)
    return try #require(imported.graph.constant(imported.graph.value(named: name)))
  }
}

/// The error message of `body`, which must throw an ImportError.
func importFailure(_ body: () throws -> Void) -> String {
  do {
    try body()
    return "(no error)"
  } catch let error as ImportError {
    return error.message
  } catch {
    return "(unexpected \(error))"
  }
}

func bytes<T>(of values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

/// A fresh empty folder under the temporary directory.
func temporaryFolder(_ label: String) throws -> String {
  let path = NSTemporaryDirectory() + "rebirth-\(label)-\(UUID().uuidString)"
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

// MARK: - Typed fields

@Suite struct TypedFieldDecoding {
  @Test func float16InInt32Data() throws {
    let halves: [Float16] = [1, -2.5, 0.099975586, 65504]
    let p = ProtoBuilder()
    let bits = halves.map { Int32($0.bitPattern) }
    let t = try p.importInitializer(
      p.tensor("w", .float16, [4]) { t in
        (t.pointee.n_int32_data, t.pointee.int32_data) = (bits.count, p.array(bits))
      })
    #expect(t.dtype == .float16)
    #expect(Array(t.rawBytes) == bytes(of: halves))
  }

  @Test func bfloat16InInt32Data() throws {
    let values: [UInt16] = [0x3F80, 0xC020, 0x7F80]
    let p = ProtoBuilder()
    let t = try p.importInitializer(
      p.tensor("w", .bfloat16, [3]) { t in
        (t.pointee.n_int32_data, t.pointee.int32_data) = (3, p.array(values.map { Int32($0) }))
      })
    #expect(Array(t.rawBytes) == bytes(of: values))
  }

  /// Types stored one element per int32: the element is the int32's low bits.
  @Test(arguments: [
    (DType.bool, [1, 0, 0, 1] as [Int32], [1, 0, 0, 1] as [UInt8]),
    (DType.int8, [-128, -3, 7, 127], [0x80, 0xFD, 0x07, 0x7F]),
    (DType.uint8, [0, 1, 200, 255], [0, 1, 200, 255]),
    (DType.int16, [-2, 300], [0xFE, 0xFF, 0x2C, 0x01]),
    (DType.uint16, [65535, 1], [0xFF, 0xFF, 0x01, 0x00]),
    (DType.int32, [-1, 16], [0xFF, 0xFF, 0xFF, 0xFF, 0x10, 0, 0, 0]),
    (DType.float8e4m3fn, [0x38, 0xC0], [0x38, 0xC0]),
  ])
  func narrowIntegersInInt32Data(dtype: DType, values: [Int32], expected: [UInt8]) throws {
    let p = ProtoBuilder()
    let count = Int64(dtype.bitWidth == 8 ? expected.count : expected.count / (dtype.bitWidth! / 8))
    let t = try p.importInitializer(
      p.tensor("w", dtype, [count]) { t in
        (t.pointee.n_int32_data, t.pointee.int32_data) = (values.count, p.array(values))
      })
    #expect(t.dtype == dtype)
    #expect(Array(t.rawBytes) == expected)
  }

  @Test func int4PacksTwoElementsPerInt32() throws {
    let p = ProtoBuilder()
    // Elements [1, -2, 3]: bytes 0xE1 (low nibble first) and 0x03.
    let t = try p.importInitializer(
      p.tensor("w", .int4, [3]) { t in
        (t.pointee.n_int32_data, t.pointee.int32_data) = (2, p.array([0xE1, 0x03] as [Int32]))
      })
    #expect(Array(t.rawBytes) == [0xE1, 0x03])
  }

  @Test func floatDoubleInt64AndComplex() throws {
    let p = ProtoBuilder()
    let floats: [Float] = [1.5, -0.25, .infinity]
    let f = try p.importInitializer(
      p.tensor("f", .float, [3]) { t in
        (t.pointee.n_float_data, t.pointee.float_data) = (3, p.array(floats))
      })
    #expect(f.floats == floats)
    let doubles: [Double] = [.pi, -1e300]
    let d = try p.importInitializer(
      p.tensor("d", .double, [2]) { t in
        (t.pointee.n_double_data, t.pointee.double_data) = (2, p.array(doubles))
      })
    #expect(Array(d.rawBytes) == bytes(of: doubles))
    let longs: [Int64] = [.min, 0, .max]
    let l = try p.importInitializer(
      p.tensor("l", .int64, [3]) { t in
        (t.pointee.n_int64_data, t.pointee.int64_data) = (3, p.array(longs))
      })
    #expect(l.int64s == longs)
    let complex: [Float] = [1, 2, 3, 4]
    let c = try p.importInitializer(
      p.tensor("c", .complex64, [2]) { t in
        (t.pointee.n_float_data, t.pointee.float_data) = (4, p.array(complex))
      })
    #expect(Array(c.rawBytes) == bytes(of: complex))
  }

  @Test func uint64AndUint32InUint64Data() throws {
    let p = ProtoBuilder()
    let wide: [UInt64] = [.max, 7]
    let u64 = try p.importInitializer(
      p.tensor("u", .uint64, [2]) { t in
        (t.pointee.n_uint64_data, t.pointee.uint64_data) = (2, p.array(wide))
      })
    #expect(Array(u64.rawBytes) == bytes(of: wide))
    let u32 = try p.importInitializer(
      p.tensor("v", .uint32, [2]) { t in
        (t.pointee.n_uint64_data, t.pointee.uint64_data) = (2, p.array([4_000_000_000, 7] as [UInt64]))
      })
    #expect(Array(u32.rawBytes) == bytes(of: [4_000_000_000, 7] as [UInt32]))
  }

  @Test func stringData() throws {
    let p = ProtoBuilder()
    let words: [[UInt8]] = [Array("héllo".utf8), [], [0, 255]]
    let t = try p.importInitializer(
      p.tensor("s", .string, [3]) { t in
        (t.pointee.n_string_data, t.pointee.string_data) = (3, p.array(words.map { p.bytes($0) }))
      })
    guard case .strings(let strings) = t.payload else {
      Issue.record("not a string tensor")
      return
    }
    #expect(strings == words)
  }

  @Test func rawDataIsAdoptedAndDetached() throws {
    let p = ProtoBuilder()
    let values: [Float] = [1, 2, 3, 4]
    let proto = p.tensor("w", .float, [2, 2]) { t in
      let raw = malloc(16)!  // protobuf-c's own buffers are malloc'd; the importer frees this one
      raw.copyMemory(from: values, byteCount: 16)
      (t.pointee.has_raw_data, t.pointee.raw_data) = (
        1, ProtobufCBinaryData(len: 16, data: raw.assumingMemoryBound(to: UInt8.self))
      )
    }
    let model = try ModelReader(path: "<test>").tensor(proto, "w")
    #expect(model.floats == values)
    #expect(proto.pointee.raw_data.data == nil && proto.pointee.raw_data.len == 0)
  }

  @Test func emptyTensorNeedsNoData() throws {
    let p = ProtoBuilder()
    let t = try p.importInitializer(p.tensor("e", .float, [0, 3]))
    #expect(t.shape == [0, 3] && t.rawBytes.isEmpty)
  }
}

// MARK: - Bad tensors

@Suite struct TensorErrors {
  @Test func rawDataLengthMismatch() {
    let p = ProtoBuilder()
    let message = importFailure {
      _ = try p.importInitializer(
        p.tensor("w", .float, [4, 4]) { t in
          (t.pointee.has_raw_data, t.pointee.raw_data) = (1, p.bytes([UInt8](repeating: 0, count: 60)))
        })
    }
    #expect(message.contains("data length"), "\(message)")
  }

  @Test func typedFieldCountMismatch() {
    let p = ProtoBuilder()
    let message = importFailure {
      _ = try p.importInitializer(
        p.tensor("w", .float16, [4]) { t in
          (t.pointee.n_int32_data, t.pointee.int32_data) = (3, p.array([1, 2, 3] as [Int32]))
        })
    }
    #expect(message.contains("data length"), "\(message)")
  }

  @Test func missingData() {
    let p = ProtoBuilder()
    let message = importFailure { _ = try p.importInitializer(p.tensor("w", .float, [2])) }
    #expect(message.contains("data length"), "\(message)")
  }

  @Test(arguments: [[Int64(1) << 62, 1 << 62], [Int64.max, 2], [3, -1]])
  func dimsOverflowOrNegative(dims: [Int64]) {
    let p = ProtoBuilder()
    let message = importFailure {
      _ = try p.importInitializer(
        p.tensor("w", .float, dims) { t in
          (t.pointee.has_raw_data, t.pointee.raw_data) = (1, p.bytes([0, 0, 0, 0]))
        })
    }
    #expect(message.contains("overflow") || message.contains("negative dimension"), "\(message)")
  }

  @Test func unsupportedDataType() {
    let p = ProtoBuilder()
    let message = importFailure {
      _ = try p.importInitializer(
        p.tensor("w", DType(rawValue: 99), [1]) { t in
          (t.pointee.has_raw_data, t.pointee.raw_data) = (1, p.bytes([0]))
        })
    }
    #expect(message.contains("does not support"), "\(message)")
  }

  /// protobuf-c never produces a count with a NULL array or a NULL string, but the importer must
  /// not trust that: they read as empty.
  @Test func nullArraysAndStringsReadAsEmpty() throws {
    let p = ProtoBuilder()
    let g = p.graph(
      nodes: [p.node("Identity", ["x"], ["y"])], inputs: [p.valueInfo("x", .float, [1])], outputs: [p.valueInfo("y")])
    g.pointee.n_initializer = 5  // with initializer == NULL
    g.pointee.n_value_info = 3
    g.pointee.node[0]!.pointee.name = nil
    g.pointee.node[0]!.pointee.n_attribute = 2
    let m = p.model(g)
    m.pointee.n_functions = 4
    m.pointee.producer_name = nil
    let model = try ModelReader(path: "<test>").model(m)
    #expect(model.graph.nodeCount == 1 && model.graph.initializers.isEmpty && model.producerName == "")
  }
}

// MARK: - External data

/// A class so that `deinit` removes the folders each test made.
@Suite final class ExternalData {
  private var folders: [String] = []
  deinit { for folder in folders { try? FileManager.default.removeItem(atPath: folder) } }

  /// Writes each file in a new folder and returns the folder.
  func folder(with files: [String: [UInt8]]) throws -> String {
    let dir = try temporaryFolder("external")
    folders.append(dir)
    for (name, data) in files { try write(data, to: dir + "/" + name) }
    return dir
  }

  func write(_ data: [UInt8], to path: String) throws {
    try Data(data).write(to: URL(fileURLWithPath: path))
  }

  func importExternal(
    folder: String, location: String, offset: Int? = nil, length: Int? = nil, dims: [Int64] = [2, 2]
  ) throws -> Tensor {
    let p = ProtoBuilder()
    let t = p.tensor("w", .float, dims)
    var entries = [("location", location)]
    if let offset { entries.append(("offset", String(offset))) }
    if let length { entries.append(("length", String(length))) }
    p.externalData(t, entries)
    let g = p.graph(nodes: [p.node("Identity", ["w"], ["y"])], outputs: [p.valueInfo("y")], initializers: [t])
    let path = folder + "/model.onnx"
    try write(p.pack(p.model(g)), to: path)
    let model = try ONNXImporter.load(path: path)
    return try #require(model.graph.constant(model.graph.value(named: "w")))
  }

  @Test func offsetAndLength() throws {
    let values: [Float] = [1, 2, 3, 4]
    let dir = try folder(with: ["weights.bin": [UInt8](repeating: 7, count: 100) + bytes(of: values) + [9, 9]])
    let t = try importExternal(folder: dir, location: "weights.bin", offset: 100, length: 16)
    #expect(t.floats == values)
  }

  @Test func nestedRelativeLocation() throws {
    let values: [Float] = [5, 6, 7, 8]
    let dir = try folder(with: [:])
    try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
    try write(bytes(of: values), to: dir + "/sub/w.bin")
    let t = try importExternal(folder: dir, location: "./sub/../sub/w.bin")
    #expect(t.floats == values)
  }

  @Test(arguments: ["../outside.bin", "/etc/passwd", "sub/../../outside.bin"])
  func escapingLocationIsRefused(location: String) throws {
    let dir = try folder(with: [:])
    let message = importFailure { _ = try importExternal(folder: dir, location: location) }
    #expect(message.contains("escapes the model folder"), "\(message)")
  }

  @Test func symlinkOutOfTheFolderIsRefused() throws {
    let outside = try folder(with: ["w.bin": [UInt8](repeating: 0, count: 16)])
    let dir = try folder(with: [:])
    try FileManager.default.createSymbolicLink(atPath: dir + "/link.bin", withDestinationPath: outside + "/w.bin")
    let message = importFailure { _ = try importExternal(folder: dir, location: "link.bin") }
    #expect(message.contains("escapes the model folder"), "\(message)")
  }

  @Test func missingFile() throws {
    let dir = try folder(with: [:])
    let message = importFailure { _ = try importExternal(folder: dir, location: "gone.bin") }
    #expect(message.contains("external data") && message.contains("gone.bin"), "\(message)")
  }

  @Test func pastTheEndOfTheFile() throws {
    let dir = try folder(with: ["w.bin": [UInt8](repeating: 0, count: 20)])
    let message = importFailure { _ = try importExternal(folder: dir, location: "w.bin", offset: 8) }
    #expect(message.contains("past the end"), "\(message)")
  }

  @Test func lengthDisagreesWithDims() throws {
    let dir = try folder(with: ["w.bin": [UInt8](repeating: 0, count: 64)])
    let message = importFailure { _ = try importExternal(folder: dir, location: "w.bin", length: 12) }
    #expect(message.contains("data length"), "\(message)")
  }

  @Test func hugeOffsetDoesNotOverflow() throws {
    let dir = try folder(with: ["w.bin": [UInt8](repeating: 0, count: 64)])
    let message = importFailure { _ = try importExternal(folder: dir, location: "w.bin", offset: Int.max - 4) }
    #expect(message.contains("past the end"), "\(message)")
  }
}

// MARK: - Graph structure

@Suite struct GraphStructure {
  @Test func danglingInput() {
    let p = ProtoBuilder()
    let g = p.graph(
      nodes: [p.node("Add", ["x", "ghost"], ["y"], name: "add")], inputs: [p.valueInfo("x", .float, [1])],
      outputs: [p.valueInfo("y")])
    let message = importFailure { _ = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx") }
    #expect(message.contains("not produced") && message.contains("ghost"), "\(message)")
  }

  @Test func cycle() {
    let p = ProtoBuilder()
    let g = p.graph(
      nodes: [p.node("Add", ["x", "b"], ["a"], name: "first"), p.node("Relu", ["a"], ["b"], name: "second")],
      inputs: [p.valueInfo("x", .float, [1])], outputs: [p.valueInfo("b")])
    let message = importFailure { _ = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx") }
    #expect(message.contains("cycle") && message.contains("first") && message.contains("second"), "\(message)")
  }

  /// A cycle with a long chain hanging off it, listed so that stripping the chain in index order
  /// frees one node per pass: the nodes on cycles are still found in linear time.
  @Test func cycleWithLongTail() {
    let tail = 20_000
    // 0 ⇄ 1; a chain 2 → 3 → … reading 1; a chain tail+2 → tail+3 → … whose head 0 also reads.
    var dependencies: [[Int]] = [[1, tail + 2], [0]] + (0..<tail).map { [$0 + 1] }
    dependencies += (0..<tail).map { $0 == 0 ? [] : [tail + 1 + $0] }
    let clock = ContinuousClock()
    var found: [Int] = []
    let elapsed = clock.measure { found = nodesOnCycles(dependencies) }
    #expect(found == [0, 1])
    #expect(elapsed < .seconds(2), "nodesOnCycles took \(elapsed)")
    #expect(nodesOnCycles([[0]]) == [0])  // a node reading itself
    #expect(nodesOnCycles([[], [0], [1, 1]]).isEmpty)  // repeated edges, no cycle
  }

  @Test func duplicateDefinitions() {
    let p = ProtoBuilder()
    let twice = p.graph(
      nodes: [p.node("Relu", ["x"], ["y"]), p.node("Neg", ["x"], ["y"])], inputs: [p.valueInfo("x", .float, [1])],
      outputs: [p.valueInfo("y")])
    let shadow = p.graph(
      nodes: [p.node("Relu", ["x"], ["x"])], inputs: [p.valueInfo("x", .float, [1])], outputs: [p.valueInfo("x")])
    let w = p.tensor("w", .float, [0])
    let twoInitializers = p.graph(outputs: [p.valueInfo("w")], initializers: [w, w])
    for g in [twice, shadow, twoInitializers] {
      let message = importFailure { _ = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx") }
      #expect(message.contains("defined more than once"), "\(message)")
    }
  }

  @Test func nodesOutOfOrderAreSorted() throws {
    let p = ProtoBuilder()
    let g = p.graph(
      nodes: [p.node("Relu", ["a"], ["y"], name: "late"), p.node("Neg", ["x"], ["a"], name: "early")],
      inputs: [p.valueInfo("x", .float, [1])], outputs: [p.valueInfo("y")])
    let model = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx")
    try model.graph.verify()
    #expect(model.graph.nodeIDs.map { model.graph[$0].name } == ["early", "late"])
  }

  @Test func sortedFileKeepsItsOrder() throws {
    let p = ProtoBuilder()
    let g = p.graph(
      nodes: [
        p.node("Neg", ["x"], ["b"], name: "n0"), p.node("Neg", ["x"], ["a"], name: "n1"),
        p.node("Add", ["a", "b"], ["y"], name: "n2"),
      ],
      inputs: [p.valueInfo("x", .float, [1])], outputs: [p.valueInfo("y")])
    let model = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx")
    #expect(model.graph.nodeIDs.map { model.graph[$0].name } == ["n0", "n1", "n2"])
  }

  /// A subgraph reading a value its parent defines later in the file: the value is captured and
  /// the If is ordered after its producer.
  @Test func subgraphCapturesOuterValues() throws {
    let p = ProtoBuilder()
    let branch = p.graph("then", nodes: [p.node("Add", ["x", "late"], ["t"])], outputs: [p.valueInfo("t")])
    let g = p.graph(
      nodes: [
        p.node(
          "If", ["c"], ["y"], name: "if",
          attributes: [p.graphAttribute("then_branch", branch), p.graphAttribute("else_branch", branch)]),
        p.node("Neg", ["x"], ["late"], name: "producer"),
      ],
      inputs: [p.valueInfo("x", .float, [1]), p.valueInfo("c", .bool, [])], outputs: [p.valueInfo("y")])
    let model = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx")
    let graph = model.graph
    try graph.verify()
    #expect(graph.nodeIDs.map { graph[$0].name } == ["producer", "if"])
    let ifNode = try #require(graph.nodeIDs.map { graph[$0] }.first { $0.opType == "If" })
    #expect(Set(ifNode.captures.map { graph[$0].name }) == ["x", "late"])
    let thenBranch = try #require(ifNode.attribute("then_branch")?.subgraphs.first)
    #expect(Set(thenBranch.outerReferences.map { thenBranch[$0].name }) == ["x", "late"])
  }

  @Test func subgraphReadingAnUndefinedNameIsDangling() {
    let p = ProtoBuilder()
    let branch = p.graph("then", nodes: [p.node("Neg", ["nowhere"], ["t"])], outputs: [p.valueInfo("t")])
    let g = p.graph(
      nodes: [p.node("If", ["c"], ["y"], name: "if", attributes: [p.graphAttribute("then_branch", branch)])],
      inputs: [p.valueInfo("c", .bool, [])], outputs: [p.valueInfo("y")])
    let message = importFailure { _ = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx") }
    #expect(message.contains("not produced") && message.contains("nowhere"), "\(message)")
  }

  @Test func emptyNamesAreOmittedSlots() throws {
    let p = ProtoBuilder()
    let g = p.graph(
      nodes: [p.node("Clip", ["x", "", "hi"], ["y", ""])],
      inputs: [p.valueInfo("x", .float, [1]), p.valueInfo("hi", .float, [])], outputs: [p.valueInfo("y")])
    let model = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx")
    let node = model.graph[model.graph.nodeIDs[0]]
    #expect(node.inputs.count == 3 && node.inputs[1] == nil && node.inputs[2] != nil)
    #expect(node.outputs.count == 2 && node.outputs[1] == nil)
  }

  @Test func negativeDimValueIsUnknown() throws {
    let p = ProtoBuilder()
    let g = p.graph(
      nodes: [p.node("Neg", ["x"], ["y"])], inputs: [p.valueInfo("x", .float, [-1, 3])], outputs: [p.valueInfo("y")])
    let model = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx")
    let x = try #require(model.graph.value(named: "x"))
    #expect(model.graph[x].type == .tensor(.float, shape: [.unknown, .value(3)]))
  }

  @Test func sparseInitializerBecomesDense() throws {
    let p = ProtoBuilder()
    let values = p.tensor("s", .float, [2]) { t in
      (t.pointee.n_float_data, t.pointee.float_data) = (2, p.array([5, 7] as [Float]))
    }
    let indices = p.tensor("", .int64, [2, 2]) { t in
      (t.pointee.n_int64_data, t.pointee.int64_data) = (4, p.array([0, 1, 2, 0] as [Int64]))
    }
    let sparse = p.new(onnx__sparse_tensor_proto__init) { (s: UnsafeMutablePointer<Onnx__SparseTensorProto>) in
      (s.pointee.values, s.pointee.indices) = (values, indices)
      (s.pointee.n_dims, s.pointee.dims) = (2, p.array([3, 2] as [Int64]))
    }
    let g = p.graph(nodes: [p.node("Identity", ["s"], ["y"])], outputs: [p.valueInfo("y")])
    (g.pointee.n_sparse_initializer, g.pointee.sparse_initializer) = (1, p.pointers([sparse]))
    let model = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx")
    let dense = try #require(model.graph.constant(model.graph.value(named: "s")))
    #expect(dense.shape == [3, 2] && dense.floats == [0, 5, 0, 0, 7, 0])
  }
}

// MARK: - Files

@Suite struct FileErrors {
  /// Every file in fixtures/bad is refused with the fragment fixtures/bad/expected.json names.
  @Test func badFixtures() throws {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
      "../../fixtures/bad"
    ).standardized
    let expected = try JSONDecoder().decode(
      [String: String].self, from: Data(contentsOf: folder.appendingPathComponent("expected.json")))
    #expect(!expected.isEmpty)
    for (name, fragment) in expected.sorted(by: { $0.key < $1.key }) {
      let message = importFailure { _ = try ONNXImporter.load(path: folder.appendingPathComponent(name).path) }
      #expect(message.lowercased().contains(fragment.lowercased()), "\(name): \(message)")
      #expect(!message.contains("\n"), "\(name): error spans lines")
    }
  }
}

// MARK: - Damaged files

@Suite struct MutatedFiles {

  /// Damaged copies of a fixture are either refused with an ImportError or imported into a graph
  /// that verifies and survives export and re-import unchanged; nothing traps.
  @Test(arguments: ["if_subgraph", "typed_fields", "constant_weights", "lstm"])
  func neverTraps(fixture: String) throws {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../fixtures")
      .standardized
    let original = try [UInt8](Data(contentsOf: folder.appendingPathComponent("\(fixture).onnx")))
    var mixer = SplitMix64(seed: UInt64(fixture.utf8.count) &* 7919)  // deterministic: a failure reproduces
    var imported = 0
    for _ in 0..<400 {
      var damaged = original
      for _ in 0..<(1 + Int(mixer.next() % 3)) {
        let i = Int(mixer.next() % UInt64(damaged.count))
        damaged[i] = mixer.next() % 2 == 0 ? UInt8(truncatingIfNeeded: mixer.next()) : damaged[i] ^ 0x80
      }
      guard let model = try? ONNXImporter.load(bytes: damaged, path: "damaged.onnx") else { continue }
      imported += 1
      try model.graph.verify()
      let bytes = try ONNXExporter.serialize(model)
      let again = try ONNXImporter.load(bytes: bytes, path: "again.onnx")
      #expect(try ONNXExporter.serialize(again) == bytes)
    }
    #expect(imported > 0)
  }
}
