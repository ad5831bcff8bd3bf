import CProtobufC
import Foundation
import Graph
import ONNXProto
import Testing

@testable import Importers

// MARK: - Hand encoding

/// A minimal protobuf writer for building test inputs byte by byte.
private struct Wire {
  var data: [UInt8] = []

  mutating func varint(_ value: UInt64) {
    var v = value
    while v >= 0x80 {
      data.append(UInt8(truncatingIfNeeded: v) | 0x80)
      v >>= 7
    }
    data.append(UInt8(v))
  }

  mutating func tag(_ field: Int, _ wireType: Int) {
    varint(UInt64(field << 3 | wireType))
  }

  mutating func int(_ field: Int, _ value: Int64) {
    tag(field, 0)
    varint(UInt64(bitPattern: value))
  }

  mutating func bytes(_ field: Int, _ payload: [UInt8]) {
    tag(field, 2)
    varint(UInt64(payload.count))
    data.append(contentsOf: payload)
  }

  mutating func string(_ field: Int, _ text: String) {
    bytes(field, Array(text.utf8))
  }

  mutating func message(_ field: Int, _ build: (inout Wire) -> Void) {
    var inner = Wire()
    build(&inner)
    bytes(field, inner.data)
  }

  static func build(_ build: (inout Wire) -> Void) -> [UInt8] {
    var w = Wire()
    build(&w)
    return w.data
  }
}

private func result(_ bytes: [UInt8], limit: Int = ProtoWire.defaultDepthLimit)
  -> Result<Int, ProtoWireError>
{
  bytes.withUnsafeBytes { raw in
    Result { () throws(ProtoWireError) -> Int in try ProtoWire.maxMessageDepth(raw, limit: limit) }
  }
}

private func depth(_ bytes: [UInt8], limit: Int = ProtoWire.defaultDepthLimit) throws(ProtoWireError)
  -> Int
{
  try result(bytes, limit: limit).get()
}

private func isMalformed(_ r: Result<Int, ProtoWireError>) -> Bool {
  if case .failure(.malformed) = r { return true }
  return false
}

/// ModelProto { ir_version: 8, opset_import { domain: "", version: 17 },
///   graph { name: "g", node { input: "x", output: "y", op_type: "Relu" },
///           input { name: "x", type { tensor_type { elem_type: 1, shape { dim { dim_value: 3 } } } } },
///           output { name: "y", type { tensor_type { elem_type: 1 } } } } }
private let smallModel: [UInt8] = Wire.build { m in
  m.int(1, 8)
  m.message(8) { $0.string(1, ""); $0.int(2, 17) }
  m.message(7) { g in
    g.string(2, "g")
    g.message(1) { n in
      n.string(1, "x")
      n.string(2, "y")
      n.string(4, "Relu")
    }
    g.message(11) { v in
      v.string(1, "x")
      v.message(2) { t in  // TypeProto
        t.message(1) { tt in  // Tensor
          tt.int(1, 1)
          tt.message(2) { s in s.message(1) { d in d.int(1, 3) } }  // shape.dim
        }
      }
    }
    g.message(12) { v in
      v.string(1, "y")
      v.message(2) { t in t.message(1) { tt in tt.int(1, 1) } }
    }
  }
}

/// ModelProto > GraphProto > (NodeProto > AttributeProto(g) > GraphProto) x `levels`,
/// built from the inside out so each level is encoded once. `named: false` leaves
/// out names, types and op types, for the smallest possible bomb.
private func nestedGraphsModel(levels: Int, named: Bool = true) -> [UInt8] {
  var graph: [UInt8] = Wire.build { if named { $0.string(2, "leaf") } }
  for _ in 0..<levels {
    let attribute = Wire.build { a in
      if named {
        a.string(1, "then_branch")
        a.int(20, 5)  // type: GRAPH
      }
      a.bytes(6, graph)  // g
    }
    let node = Wire.build { n in
      if named { n.string(4, "If") }
      n.bytes(5, attribute)
    }
    graph = Wire.build { $0.bytes(1, node) }
  }
  return Wire.build { m in
    m.int(1, 8)
    m.bytes(7, graph)
  }
}


// MARK: - Depth counting

@Suite struct ProtoWireTests {
  @Test func emptyAndFlatModels() throws {
    #expect(try depth([]) == 1)
    #expect(try depth(Wire.build { $0.int(1, 8) }) == 1)
    // Strings, bytes and unknown fields are not descended into.
    let flat = Wire.build { m in
      m.int(1, 9)
      m.string(2, "producer")
      m.string(6, String(repeating: "\u{0A}\u{02}", count: 50))  // doc_string that looks nested
      m.bytes(999, [0x3A, 0x02, 0x3A, 0x00])  // unknown field
      m.tag(3000, 1); m.data.append(contentsOf: [UInt8](repeating: 0, count: 8))  // fixed64
      m.tag(3001, 5); m.data.append(contentsOf: [1, 2, 3, 4])  // fixed32
    }
    #expect(try depth(flat) == 1)
  }

  @Test func smallModelDepth() throws {
    // Model > Graph > ValueInfo > Type > Type.Tensor > Shape > Dimension
    #expect(try depth(smallModel) == 7)
    #expect(try depth(smallModel, limit: 7) == 7)
    #expect(result(smallModel, limit: 6) == .failure(.tooDeep(7)))
  }

  @Test func smallModelUnpacksWithProtobufC() throws {
    let model = try smallModel.withUnsafeBytes { raw throws(ImportError) in
      try ONNXModelProto.unpack(raw)
    }
    let m = model.pointer.pointee
    #expect(m.has_ir_version != 0 && m.ir_version == 8)
    #expect(m.n_opset_import == 1)
    let graph = try #require(m.graph)
    #expect(String(cString: graph.pointee.name) == "g")
    #expect(graph.pointee.n_node == 1)
    let node = try #require(graph.pointee.node?[0])
    #expect(String(cString: node.pointee.op_type) == "Relu")
  }

  @Test func packedByProtobufC() throws {
    // Build a ModelProto with protobuf-c's own API, pack it, and scan the result.
    var opset = Onnx__OperatorSetIdProto()
    onnx__operator_set_id_proto__init(&opset)
    opset.has_version = 1
    opset.version = 21
    var graph = Onnx__GraphProto()
    onnx__graph_proto__init(&graph)
    var model = Onnx__ModelProto()
    onnx__model_proto__init(&model)
    model.has_ir_version = 1
    model.ir_version = 10
    let packed: [UInt8] = withUnsafeMutablePointer(to: &opset) { opsetPointer in
      withUnsafeMutablePointer(to: &graph) { graphPointer in
        var opsets: [UnsafeMutablePointer<Onnx__OperatorSetIdProto>?] = [opsetPointer]
        return opsets.withUnsafeMutableBufferPointer { list in
          model.n_opset_import = 1
          model.opset_import = list.baseAddress
          model.graph = graphPointer
          let size = onnx__model_proto__get_packed_size(&model)
          var out = [UInt8](repeating: 0, count: size)
          let written = out.withUnsafeMutableBufferPointer {
            onnx__model_proto__pack(&model, $0.baseAddress)
          }
          #expect(written == size)
          model.opset_import = nil
          model.graph = nil
          return out
        }
      }
    }
    #expect(try depth(packed) == 2)
  }

  @Test func typeProtoNesting() throws {
    // ValueInfo whose type is sequence<map<int64, optional<tensor>>>.
    let model = Wire.build { m in
      m.message(7) { g in
        g.message(13) { v in
          v.message(2) { t in  // TypeProto                      depth 4
            t.message(4) { s in  // Sequence                     5
              s.message(1) { t2 in  // TypeProto                 6
                t2.message(5) { map in  // Map                   7
                  map.int(1, 7)
                  map.message(2) { t3 in  // TypeProto           8
                    t3.message(9) { o in  // Optional            9
                      o.message(1) { t4 in  // TypeProto         10
                        t4.message(1) { $0.int(1, 1) }  // Tensor 11
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    #expect(try depth(model) == 11)
  }

  @Test func nestedSubgraphsAreCounted() throws {
    // Each subgraph level adds Node, Attribute and Graph: 2 + 3 * levels.
    for levels in [0, 1, 2, 10, 32] {
      #expect(try depth(nestedGraphsModel(levels: levels)) == 2 + 3 * levels)
    }
    // Depth limit 100 admits 32 nested subgraphs (depth 98) but not 33 (101).
    #expect(result(nestedGraphsModel(levels: 33)) == .failure(.tooDeep(101)))
  }

  @Test func otherMessagePathsAreCounted() throws {
    // FunctionProto > NodeProto > AttributeProto > GraphProto, and
    // TrainingInfoProto > GraphProto > initializer TensorProto > external_data entry,
    // and SparseTensorProto inside an attribute.
    let model = Wire.build { m in
      m.message(25) { f in f.message(7) { n in n.message(5) { a in a.message(6) { _ in } } } }
      m.message(20) { t in
        t.message(2) { g in g.message(5) { tensor in tensor.message(13) { e in e.string(1, "k") } } }
      }
      m.message(7) { g in
        g.message(1) { n in
          n.message(5) { a in a.message(22) { s in s.message(2) { t in t.message(3) { _ in } } } }
        }
      }
    }
    // Graph(2) > Node(3) > Attribute(4) > SparseTensor(5) > Tensor(6) > Segment(7)
    #expect(try depth(model) == 7)
  }

  // MARK: - Refusals

  @Test func deepNestingBombIsRefused() throws {
    let bomb = nestedGraphsModel(levels: 3000, named: false)
    #expect(bomb.count < 40 * 1024)
    #expect(result(bomb) == .failure(.tooDeep(101)))
    #expect(result(bomb, limit: 10) == .failure(.tooDeep(11)))
    // The scan itself has no recursion: it measures the whole bomb with a huge limit.
    #expect(try depth(bomb, limit: Int.max) == 2 + 3 * 3000)
    // The importer refuses it before protobuf-c sees it.
    let error = bomb.withUnsafeBytes { raw in
      Result { () throws(ImportError) in try ONNXModelProto.unpack(raw, path: "bomb.onnx") }
    }
    guard case .failure(let e) = error else {
      Issue.record("bomb accepted")
      return
    }
    #expect(e.path == "bomb.onnx")
    #expect(e.description.contains("nesting depth"))
  }

  @Test func truncatedInputIsMalformed() throws {
    // Every proper prefix of the small model that cuts a field is refused; the
    // scan never reads past the end.
    var refused = 0
    for cut in 1..<smallModel.count {
      let r = result(Array(smallModel[..<cut]))
      if isMalformed(r) { refused += 1 }
    }
    #expect(refused > 0)
    // Cutting inside the opset_import message (tag 0x42, length, ...) is refused.
    #expect(isMalformed(result(Array(smallModel[..<4]))))
    // A tag with its varint cut off.
    #expect(result([0x80]) == .failure(.malformed(reason: "truncated varint", offset: 0)))
    // A varint field whose value is cut off.
    #expect(isMalformed(result([0x08, 0xFF])))
    // fixed64 and fixed32 fields with too few bytes.
    #expect(isMalformed(result([0x09, 1, 2, 3])))
    #expect(isMalformed(result([0x0D, 1, 2])))
  }

  @Test func lengthPastEndIsMalformed() throws {
    // graph with length 100 but only 2 bytes follow.
    #expect(result([0x3A, 100, 0x0A, 0x00]) == .failure(.malformed(
      reason: "length 100 runs past the end of its message", offset: 1)))
    // A child that fits in the buffer but not in its parent message.
    // graph(len 2) { node(len 3) ... } followed by padding inside the model.
    let r = result([0x3A, 0x02, 0x0A, 0x03, 0x12, 0x01, 0x78])
    #expect(r == .failure(.malformed(reason: "length 3 runs past the end of its message", offset: 3)))
    // Huge lengths must not overflow.
    var w = Wire()
    w.tag(7, 2)
    w.varint(UInt64.max)
    #expect(isMalformed(result(w.data)))
    w = Wire()
    w.tag(2, 2)
    w.varint(UInt64(Int.max))
    #expect(isMalformed(result(w.data)))
  }

  @Test func badVarintsAndWireTypesAreMalformed() throws {
    // 11-byte varint.
    let long: [UInt8] = [0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01]
    #expect(result(long) == .failure(.malformed(reason: "varint longer than 10 bytes", offset: 1)))
    // 10-byte varint is fine.
    let ten: [UInt8] = [0x08] + [UInt8](repeating: 0xFF, count: 9) + [0x01]
    #expect(try depth(ten) == 1)
    // Groups and undefined wire types.
    for wireType in [3, 4, 6, 7] {
      #expect(isMalformed(result([UInt8(1 << 3 | wireType)])))
    }
    // Field number 0, and field number above 2^29-1.
    #expect(isMalformed(result([0x00, 0x00])))
    var w = Wire()
    w.varint(UInt64(1) << 32)
    w.varint(0)
    #expect(isMalformed(result(w.data)))
  }

  @Test func nonPositiveLimitIsTooDeep() {
    #expect(result([], limit: 0) == .failure(.tooDeep(1)))
    #expect(result(smallModel, limit: -5) == .failure(.tooDeep(1)))
  }

  @Test func randomGarbageNeverTraps() throws {
    var rng = SplitMix64(seed: 0x5EED_0F_0DD1)
    var outcomes = (ok: 0, malformed: 0, tooDeep: 0)
    func run(_ bytes: [UInt8]) {
      switch result(bytes, limit: 20) {
      case .success: outcomes.ok += 1
      case .failure(.malformed): outcomes.malformed += 1
      case .failure(.tooDeep): outcomes.tooDeep += 1
      }
      // Whatever the scan accepts, protobuf-c must survive too.
      _ = bytes.withUnsafeBytes { raw in
        Result { () throws(ImportError) in try ONNXModelProto.unpack(raw, depthLimit: 20) }
      }
    }
    // Uniform garbage.
    for _ in 0..<1000 {
      let count = Int.random(in: 0..<512, using: &rng)
      run((0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }
    // Mutations of valid models, which get much further into the scan.
    let seeds = [smallModel, nestedGraphsModel(levels: 8)]
    for i in 0..<1000 {
      var bytes = seeds[i % seeds.count]
      for _ in 0..<Int.random(in: 1...4, using: &rng) {
        guard !bytes.isEmpty else { break }
        let at = Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: bytes[at] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
        case 1: bytes[at] = UInt8.random(in: 0...255, using: &rng)
        case 2: bytes.removeSubrange(at...)
        default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: at)
        }
      }
      run(bytes)
    }
    #expect(outcomes.ok + outcomes.malformed + outcomes.tooDeep == 2000)
    #expect(outcomes.malformed > 0 && outcomes.ok > 0)
  }

  @Test func largeSkippedFieldIsLinear() throws {
    // 16 MB of raw_data inside an initializer is skipped in one step.
    var tensor = Wire()
    tensor.int(2, 1)
    tensor.bytes(9, [UInt8](repeating: 0x0A, count: 16 << 20))
    let model = Wire.build { m in m.message(7) { g in g.bytes(5, tensor.data) } }
    #expect(try depth(model) == 3)
  }

  // MARK: - Schema table against the generated protobuf-c descriptors

  @Test func schemaMatchesProtobufCDescriptors() throws {
    // Walk every message type reachable from ModelProto in the protobuf-c
    // descriptors, and check that ONNXMessage lists exactly its message fields.
    var byName: [String: ONNXMessage] = [:]
    for kind in ONNXMessage.allCases { byName[kind.protoName] = kind }
    var seen: Set<String> = []
    // Descriptors are copied by value; their field tables and child descriptor
    // pointers refer to static C storage.
    var queue: [ProtobufCMessageDescriptor] = [onnx__model_proto__descriptor]
    var index = 0
    while index < queue.count {
      let descriptor = queue[index]
      index += 1
      let name = String(cString: descriptor.name)
      guard seen.insert(name).inserted else { continue }
      let kind = try #require(byName[name], "ONNXMessage lacks \(name)")
      var messageFields: Set<Int> = []
      for i in 0..<Int(descriptor.n_fields) {
        let field = descriptor.fields[i]
        let number = Int(field.id)
        if field.type == PROTOBUF_C_TYPE_MESSAGE {
          messageFields.insert(number)
          let child = try #require(
            field.descriptor?.assumingMemoryBound(to: ProtobufCMessageDescriptor.self))
          let childName = String(cString: child.pointee.name)
          #expect(
            kind.child(number)?.protoName == childName,
            "\(name) field \(number) should be \(childName)")
          queue.append(child.pointee)
        } else {
          #expect(kind.child(number) == nil, "\(name) field \(number) is not a message")
        }
      }
      // No message fields in the table beyond those of the descriptor.
      for number in 1...64 where !messageFields.contains(number) {
        #expect(kind.child(number) == nil, "\(name) has no message field \(number)")
      }
    }
    #expect(seen == Set(ONNXMessage.allCases.map(\.protoName)))
  }
}

// MARK: - Files

@Suite struct ONNXFileTests {
  private func temporaryFile(_ bytes: [UInt8]) throws -> String {
    let url = FileManager.default.temporaryDirectory
      .appendingPathComponent("protowire-\(UUID().uuidString).onnx")
    try Data(bytes).write(to: url)
    return url.path
  }

  private func loadError(_ path: String) -> ImportError? {
    do {
      _ = try ONNXModelProto.load(path: path)
      return nil
    } catch {
      return error
    }
  }

  @Test func loadsValidFile() throws {
    let path = try temporaryFile(smallModel)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let model = try ONNXModelProto.load(path: path)
    #expect(model.pointer.pointee.ir_version == 8)
    #expect(model.pointer.pointee.graph?.pointee.n_input == 1)
  }

  @Test func missingFile() throws {
    let path = "/nonexistent/\(UUID().uuidString).onnx"
    let error = try #require(loadError(path))
    #expect(error.path == path)
    #expect(error.message == "no such file")
    #expect(error.description == "\(path): no such file")
  }

  @Test func emptyFile() throws {
    let path = try temporaryFile([])
    defer { try? FileManager.default.removeItem(atPath: path) }
    #expect(loadError(path)?.message == "empty file")
  }

  @Test func directory() throws {
    #expect(loadError(FileManager.default.temporaryDirectory.path)?.message == "is a directory")
  }

  @Test func bombFile() throws {
    let path = try temporaryFile(nestedGraphsModel(levels: 3000, named: false))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let error = try #require(loadError(path))
    #expect(error.message.contains("nesting depth"))
  }

  @Test func garbageFile() throws {
    let path = try temporaryFile(Array("not a model at all\n".utf8))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let error = try #require(loadError(path))
    #expect(error.message.hasPrefix("not a valid ONNX protobuf"))
  }

  @Test func wellFormedWireButNotAModel() throws {
    // Passes the scan (graph holds a string where a NodeProto is expected, but the
    // wire format is fine), yet protobuf-c rejects a varint where a message must be.
    let path = try temporaryFile([0x3A, 0x02, 0x08, 0x01, 0x08, 0x01, 0x3A, 0x02, 0x0A, 0x00])
    defer { try? FileManager.default.removeItem(atPath: path) }
    _ = loadError(path)  // must not crash; protobuf-c decides
    let path2 = try temporaryFile([0x38, 0x01])  // graph (field 7) as a varint
    defer { try? FileManager.default.removeItem(atPath: path2) }
    #expect(loadError(path2)?.message == "not a valid ONNX protobuf")
  }
}
