import CZlib
import Exporters
import Foundation
import Graph
import GraphTesting
import Importers
import Runtime
import Testing

/// Every committed model (the writer stores them all, If subgraphs included).
private let fixtureModels: [String] = {
  let fm = FileManager.default
  var paths: [String] = []
  for folder in ["", "passes"] {
    let dir = TestEnvironment.fixtures.appendingPathComponent(folder)
    let names = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
    paths += names.filter { $0.hasSuffix(".onnx") }.sorted().map { dir.appendingPathComponent($0).path }
  }
  return paths
}()

/// `.tmf` writer and reader (docs/tmf.md).
@Suite struct TMFTests {
  @Test(arguments: fixtureModels)
  func roundTripGivesBitIdenticalOutputs(path: String) throws {
    let model = try ONNXImporter.load(path: path)
    let bytes = try TMFWriter.serialize(model)
    let file = try TMFReader.open(bytes: bytes, path: path)
    try file.model.graph.verify()
    #expect(file.model.graph.nodeCount == model.graph.nodeCount)
    #expect(file.model.graph.inputs.map { file.model.graph[$0].type } == model.graph.inputs.map { model.graph[$0].type })
    guard (try? seededInputs(for: model)) != nil else { return }
    try expectSameOutputs(model, file.model, tolerance: 0)
  }

  @Test func opCodesAreTheRuntimesOperators() {
    // Fused layers (ai.rebirth.Conv, …) are the standard op code plus the node's activation field.
    #expect(TMF.opCodes.sorted() == KernelRegistry.standard.operators.filter { !$0.contains(".") }.sorted())
    #expect(Set(TMF.opCodes).count == TMF.opCodes.count)
  }

  @Test func weightsAreUsedInPlaceFromTheMapping() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let path = dir.appendingPathComponent("m.tmf").path
    let model = try ONNXImporter.load(path: TestEnvironment.fixture("resnet_bottleneck.onnx"))
    try TMFWriter.write(model, to: path)
    var constants: [Tensor] = []
    do {
      let file = try TMFReader.open(path: path)
      let mapped = file.mappedBytes
      let range = UInt(bitPattern: mapped.baseAddress!)..<(UInt(bitPattern: mapped.baseAddress!) + UInt(mapped.count))
      for v in file.model.graph.initializers {
        guard let t = file.model.graph.constant(v), t.byteCount > 0 else { continue }
        let address = UInt(bitPattern: t.rawBytes.baseAddress!)
        #expect(range.contains(address), "\(file.model.graph[v].name) was copied")
        #expect(address % 64 == 0)
        constants.append(t)
      }
    }
    #expect(!constants.isEmpty)
    // The file object is gone; the tensors keep the mapping alive.
    let sum = constants.reduce(0.0) { $0 + ($1.doubles ?? []).reduce(0, +) }
    #expect(sum.isFinite)
  }

  @Test func fusedActivationsRoundTrip() throws {
    let text = """
      <ir_version: 8, opset_import: ["" : 17, "ai.rebirth" : 1]>
      g (float[1,4] x) => (float[1,3] y) <float[3,4] w = \(floatLiteral(12)), float[3] b = {0.1, 0.2, 0.3}> {
        y = ai.rebirth.Gemm<transB = 1, activation = "Clip", activation_params = [-0.5, 0.5]>(x, w, b)
      }
      """
    let model = try Model(parsing: text)
    let back = try TMFReader.open(bytes: try TMFWriter.serialize(model)).model
    #expect(back.text() == model.text())
  }

  @Test func aCustomDomainNodeIsRefusedByName() throws {
    let model = try Model(parsing: """
      <ir_version: 8, opset_import: ["" : 17, "com.example" : 1]>
      g (float[2] x) => (float[2] y) { y = com.example.Frob(x) }
      """)
    #expect(throws: TMFWriteError("node '#0' (com.example.Frob): custom-domain operator has no .tmf op code (docs/tmf.md lists them)")) {
      try TMFWriter.serialize(model)
    }
  }

  @Test func metadataRoundTrips() throws {
    let model = try ONNXImporter.load(path: TestEnvironment.fixture("mlp.onnx"))
    let entries = [MetadataEntry(key: "producer", value: "rebirth"), MetadataEntry(key: "source_sha256", value: "ab")]
    let file = try TMFReader.open(bytes: try TMFWriter.serialize(model, metadata: entries))
    #expect(file.metadata == entries)
    #expect(file.versionMajor == 1)
  }

  @Test func sha256MatchesTheStandardVectors() {
    func hex(_ s: String) -> String {
      var h = SHA256()
      Array(s.utf8).withUnsafeBytes { h.update($0) }
      return h.finalize().map { String(format: "%02x", $0) }.joined()
    }
    #expect(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(hex(String(repeating: "a", count: 1000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
  }

  /// Every prefix of a good file, and seeded single-byte changes with the checksums repaired,
  /// give a TMFError or a valid model: never a trap.
  @Test func truncationsAndMutationsNeverTrap() throws {
    let model = try ONNXImporter.load(path: TestEnvironment.fixture("mlp.onnx"))
    let good = try TMFWriter.serialize(model)
    for length in stride(from: 0, to: good.count, by: 97) {
      #expect(throws: TMFError.self) { try TMFReader.open(bytes: Array(good[0..<length])) }
    }
    let dataStart = dataSectionOffset(good)  // mutate the tables, not the weights
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    for _ in 0..<3000 {
      state ^= state << 13; state ^= state >> 7; state ^= state << 17
      var bytes = good
      let at = Int(state % UInt64(dataStart))
      bytes[at] ^= UInt8(truncatingIfNeeded: state >> 32) | 1
      repairChecksums(&bytes)
      _ = try? TMFReader.open(bytes: bytes)
    }
  }

  // MARK: Damaged files, through the CLI

  static let badFiles: [(String, String)] = {
    let dir = TestEnvironment.fixtures.appendingPathComponent("bad-tmf")
    guard let data = try? Data(contentsOf: dir.appendingPathComponent("expected.json")),
      let map = try? JSONSerialization.jsonObject(with: data) as? [String: String]
    else { return [] }
    return map.sorted { $0.key < $1.key }.map { (dir.appendingPathComponent($0.key).path, $0.value) }
  }()

  @Test func theDamagedFileSetIsComplete() {
    #expect(Self.badFiles.count >= 20)
  }

  @Test(arguments: badFiles)
  func aDamagedFileIsOneLineAndStatusOne(path: String, fragment: String) throws {
    let result = try runRebirth(["inspect", path])
    if fragment.isEmpty {  // a newer minor version is accepted
      #expect(result.status == 0, "stderr: \(result.stderr)")
      return
    }
    #expect(result.status == 1)
    #expect(result.stderr.hasPrefix("rebirth: \(path): "), "stderr was: \(result.stderr)")
    #expect(result.stderr.contains(fragment), "stderr was: \(result.stderr)")
    #expect(result.stderr.filter { $0 == "\n" }.count == 1)
  }

  @Test func optimizeWritesAndVerifiesATMF() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let out = dir.appendingPathComponent("out.tmf").path
    let source = TestEnvironment.fixture("resnet_bottleneck.onnx")
    let optimize = try runRebirth(["optimize", source, out])
    #expect(optimize.status == 0, "stderr: \(optimize.stderr)")
    let verify = try runRebirth(["verify", source, out])
    #expect(verify.status == 0, "stdout: \(verify.stdout) stderr: \(verify.stderr)")
    let file = try TMFReader.open(path: out)
    #expect(file.metadata.first { $0.key == "source_sha256" }?.value.count == 64)
    #expect(file.metadata.contains { $0.key == "passes" && $0.value.contains("fold-batchnorm") })
    for command in [["inspect", out], ["diff", source, out], ["bench", out, "--runs", "2"]] {
      let result = try runRebirth(command)
      #expect(result.status == 0, "\(command): \(result.stderr)")
    }
  }

  @Test func anUnstorableModelLeavesNoFile() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let source = dir.appendingPathComponent("loop.onnx").path
    let loop = try Model(parsing: """
      <ir_version: 8, opset_import: ["" : 17]>
      g (int64 n, bool c, float[2] x) => (float[2] y) {
        y = Loop (n, c, x) <body: graph = body (int64 i, bool k, float[2] v) => (bool k2, float[2] w) { k2 = Identity (k)  w = Neg (v) }>
      }
      """)
    try ONNXExporter.write(loop, to: source)
    let out = dir.appendingPathComponent("out.tmf").path
    let result = try runRebirth(["optimize", source, out, "--passes", "none"])
    #expect(result.status == 1)
    #expect(result.stderr == "rebirth: \(out): node '#0' (Loop): operator has no .tmf op code: rebirth's runtime does not run it (docs/tmf.md lists the operators)\n")
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["loop.onnx"])
  }
}

/// The file offset of the data section (kind 10).
private func dataSectionOffset(_ b: [UInt8]) -> Int {
  func u32(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 | Int(b[o + 2]) << 16 | Int(b[o + 3]) << 24 }
  for i in 0..<u32(20) where u32(64 + 32 * i) == 10 { return u32(64 + 32 * i + 8) }
  return b.count
}

/// Recomputes every section CRC, the table CRC and the header CRC (docs/tmf.md).
private func repairChecksums(_ b: inout [UInt8]) {
  func u32(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 | Int(b[o + 2]) << 16 | Int(b[o + 3]) << 24 }
  func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
  func put(_ v: UInt32, _ o: Int) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
  func crc(_ start: Int, _ count: Int) -> UInt32 {
    b.withUnsafeBytes { UInt32(truncatingIfNeeded: crc32(0, $0.baseAddress!.assumingMemoryBound(to: Bytef.self) + start, uInt(count))) }
  }
  guard b.count >= 64 else { return }
  let count = u32(20), table = u64(24)
  guard count < 64, table >= 0, table + count * 32 <= b.count else { return }
  for i in 0..<count {
    let e = table + i * 32
    let off = u64(e + 8), length = u64(e + 16)
    if off >= 0, length >= 0, off <= b.count, b.count - off >= length { put(crc(off, length), e + 24) }
  }
  put(crc(table, count * 32), 40)
  put(crc(0, 44), 44)
}
