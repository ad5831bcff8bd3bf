import Exporters
import Foundation
import Graph
import GraphTesting
@testable import Importers
import Testing

/// Large initializers of a mapped model are views into the file, not copies (RawDataViews.swift).
@Suite struct RawDataViewsTests {
  /// A model with one large initializer (`big`, 40 000 floats) and one small one, whose large
  /// raw_data lands at an offset that is not a multiple of 16 (the name's length shifts it).
  static func model(name: String = "big") throws -> Model {
    let values = (0..<40_000).map { Float($0 % 251) * 0.5 - 31 }
    let text = """
      <ir_version: 8, opset_import: ["" : 17]>
      g (float[1,4] x) => (float[1,4] y) <float[4] small = {1.0, 2.0, 3.0, 4.0}> {
        y = Add (x, small)
      }
      """
    var model = try Model(parsing: text)
    _ = try model.graph.addInitializer(name: name, Tensor(floats: values, shape: [200, 200]))
    return model
  }

  static func write(_ model: Model) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("views-\(UUID().uuidString).onnx").path
    try ONNXExporter.write(model, to: path)
    return path
  }

  @Test func skeletonEmptiesLargeRawDataAndSaysWhereItWas() throws {
    let bytes = try ONNXExporter.serialize(try Self.model())
    try bytes.withUnsafeBytes { raw in
      let (skeleton, views) = try #require(RawDataViews.skeleton(of: raw))
      #expect(views.count == 1)
      let view = try #require(views.first)
      #expect(view.count == 160_000)
      // The payload, and two bytes of each of the three lengths around it (raw_data's, the
      // tensor's and the graph's: each shrinks from a 3-byte varint to a 1-byte one).
      #expect(skeleton.count == bytes.count - 160_000 - 3 * 2)
      // The view is exactly the tensor's little-endian floats.
      let floats = (0..<4).map { raw.loadUnaligned(fromByteOffset: view.offset + 4 * $0, as: Float.self) }
      #expect(floats == [-31, -30.5, -30, -29.5])
      // The skeleton is a valid model whose initializer has an empty raw_data.
      let proto = try skeleton.withUnsafeBytes { try ONNXModelProto.unpack($0) }
      let tensor = try #require(proto.pointer.pointee.graph.pointee.initializer[view.initializer])
      #expect(tensor.pointee.has_raw_data != 0 && tensor.pointee.raw_data.len == 0)
    }
  }

  @Test func importedWeightsAreViewsThatOutliveTheImporter() throws {
    let original = try Self.model()
    let path = try Self.write(original)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let loaded = try ONNXImporter.load(path: path)
    let big = try #require(loaded.graph.constant(try #require(loaded.graph.value(named: "big"))))
    guard case .raw(let storage) = big.payload else { Issue.record("not raw"); return }
    // A view: stored where the file put it, which is not 16-byte aligned here; `bytes` is an
    // aligned copy with the same content.
    #expect(Int(bitPattern: storage.storedBytes.baseAddress) % TensorStorage.alignment != 0)
    #expect(Int(bitPattern: storage.bytes.baseAddress) % TensorStorage.alignment == 0)
    #expect(storage.bytes.elementsEqual(storage.storedBytes))
    let expected = try #require(original.graph.constant(try #require(original.graph.value(named: "big"))))
    #expect(big.floats == expected.floats)
    #expect(big.hasSameContent(as: expected))
    // Written back byte for byte.
    #expect(try ONNXExporter.serialize(loaded) == (try ONNXExporter.serialize(original)))
  }

  @Test func aFileWhoseLengthsDoNotAddUpIsReportedAsBefore() throws {
    var bytes = try ONNXExporter.serialize(try Self.model())
    bytes.removeLast(1000)  // inside the large raw_data: its length now runs past the end
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("views-\(UUID().uuidString).onnx").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    bytes.withUnsafeBytes { #expect(RawDataViews.skeleton(of: $0) == nil) }
    #expect(throws: ImportError.self) { try ONNXImporter.load(path: path) }
  }

  /// Layouts the skeleton does not handle fall back to the plain unpack: two graph fields
  /// (protobuf merges them), a tensor with two raw_data fields (the last wins).
  @Test func unusualLayoutsAreLeftToTheUnpacker() throws {
    let bytes = try ONNXExporter.serialize(try Self.model())
    // Field 7 (graph) twice: append a copy of an empty graph field.
    let doubled = bytes + [0x3A, 0x00]
    doubled.withUnsafeBytes { #expect(RawDataViews.skeleton(of: $0) == nil) }
    // Nothing large: no views, no skeleton.
    let small = try ONNXExporter.serialize(try Model(parsing: """
      <ir_version: 8, opset_import: ["" : 17]>
      g (float[1,4] x) => (float[1,4] y) <float[4] small = {1.0, 2.0, 3.0, 4.0}> { y = Add (x, small) }
      """))
    small.withUnsafeBytes { #expect(RawDataViews.skeleton(of: $0) == nil) }
  }

  @Test func tensorWithTwoRawDataFieldsIsLeftToTheUnpacker() {
    // GraphProto { initializer: TensorProto { raw_data: 70 000 bytes; raw_data: 4 bytes } }
    let big = [UInt8](repeating: 7, count: 70_000)
    var tensor: [UInt8] = [0x4A] + varint(big.count) + big + [0x4A, 0x04, 1, 2, 3, 4]
    tensor = [0x2A] + varint(tensor.count) + tensor
    let model: [UInt8] = [0x3A] + varint(tensor.count) + tensor
    model.withUnsafeBytes { #expect(RawDataViews.skeleton(of: $0) == nil) }
  }

  /// Damaged files read through the views (a path) and through the plain unpacker (bytes) give
  /// the same answer: both refuse, or both give a model that serializes to the same bytes.
  @Test func viewsAndThePlainUnpackerAgreeOnDamagedFiles() throws {
    let bytes = try ONNXExporter.serialize(try Self.model())
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("views-\(UUID().uuidString).onnx").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    var rng = SplitMix64(seed: 42)
    for _ in 0..<300 {
      var damaged = bytes
      // Damage the structure, not the weights: positions in the first and last few hundred bytes.
      for _ in 0..<Int(rng.next() % 3 + 1) {
        let span = 400
        let near = Int(rng.next() % UInt64(2 * span))
        let position = near < span ? near : damaged.count - 2 * span + near
        damaged[position] = UInt8(truncatingIfNeeded: rng.next())
      }
      try Data(damaged).write(to: URL(fileURLWithPath: path))
      let viaFile = Result { () throws(ImportError) in try ONNXImporter.load(path: path) }
      let viaBytes = Result { () throws(ImportError) in try ONNXImporter.load(bytes: damaged, path: path) }
      switch (viaFile, viaBytes) {
      case (.success(let a), .success(let b)):
        #expect(try ONNXExporter.serialize(a) == (try ONNXExporter.serialize(b)))
      case (.failure(let a), .failure(let b)): #expect(a.message == b.message)
      default: Issue.record("the file and the bytes disagree: \(viaFile.map { _ in "model" }) vs \(viaBytes.map { _ in "model" })")
      }
    }
  }

  private func varint(_ value: Int) -> [UInt8] {
    var v = value, out: [UInt8] = []
    while v >= 0x80 {
      out.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    return out + [UInt8(v)]
  }
}
