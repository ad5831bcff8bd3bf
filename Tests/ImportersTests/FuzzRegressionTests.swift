// The importer's fuzz property, checked in `swift test` without libFuzzer:
//
//   every input is either refused with an ImportError, or imported into a model whose graph (and
//   every function body) verifies, that serializes, imports again, verifies again, and
//   serializes to the same bytes.
//
// Inputs: the committed fixtures (good and bad), every input the libFuzzer target
// (fuzz/ImporterFuzzer.swift, run by fuzz/run.sh) ever broke, kept in fixtures/fuzz-regressions/,
// and a few thousand deterministic mutations of them: bit flips, truncations, byte insertions
// and deletions, and structure-aware edits of the protobuf wire format (length fields tampered
// with, fields dropped, duplicated, swapped, scalars replaced, with or without fixing the
// lengths of the enclosing messages). A failure names the seed and mutation and saves the input.

import CProtobufC
import Exporters
import Foundation
import Graph
import GraphTesting
import Importers
import ONNXProto
import Testing

@Suite struct FuzzRegressions {
  // MARK: Seeds

  static var regressionFolder: URL { TestEnvironment.fixtures.appendingPathComponent("fuzz-regressions") }

  /// A seed input: where it came from (relative to fixtures/) and its bytes.
  struct Seed: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    var testDescription: String { name }
  }

  /// The files of `folder` (relative name `prefix + file`) ending in `.onnx`, sorted.
  static func onnxFiles(in folder: URL, prefix: String) -> [(String, URL)] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
    return names.filter { $0.hasSuffix(".onnx") }.sorted().map { (prefix + $0, folder.appendingPathComponent($0)) }
  }

  /// The inputs the fuzzer broke, replayed as they are and mutated.
  static var regressionFiles: [(String, URL)] { onnxFiles(in: regressionFolder, prefix: "fuzz-regressions/") }

  /// Every seed: fixtures/*.onnx, fixtures/bad/*.onnx, fixtures/fuzz-regressions/*.onnx.
  static let seeds: [Seed] = {
    let files =
      onnxFiles(in: TestEnvironment.fixtures, prefix: "")
      + onnxFiles(in: TestEnvironment.fixtures.appendingPathComponent("bad"), prefix: "bad/")
      + regressionFiles
    return files.compactMap { name, url in
      (try? Data(contentsOf: url)).map { Seed(name: name, bytes: [UInt8]($0)) }
    }
  }()

  /// Inputs are imported as a file in fixtures/, so external data named `external_data.onnx.data`
  /// (and mutations of it) resolve against the committed fixture's data file.
  static let importPath = TestEnvironment.fixture("fuzzed.onnx")

  // MARK: The property

  enum Outcome { case refused, imported, broken }

  /// Checks the property for `bytes`; records an issue (and saves the input) when it breaks.
  @discardableResult
  static func check(_ bytes: [UInt8], _ label: String) -> Outcome {
    let model: Model
    do {
      model = try ONNXImporter.load(bytes: bytes, path: importPath)
    } catch {
      // `load` throws only ImportError (typed throws); its message must say something.
      if error.message.isEmpty || error.path != importPath {
        return fail(bytes, label, "an ImportError without a message or with the wrong path: \(error)")
      }
      return .refused
    }
    guard verifies(model, bytes, label, "import") else { return .broken }
    let serialized: [UInt8]
    do {
      serialized = try ONNXExporter.serialize(model)
    } catch {
      return fail(bytes, label, "an imported, verified model does not serialize: \(error)")
    }
    let again: Model
    do {
      again = try ONNXImporter.load(bytes: serialized, path: importPath)
    } catch {
      return fail(bytes, label, "the serialized model does not import again: \(error)")
    }
    guard verifies(again, bytes, label, "re-import") else { return .broken }
    do {
      let serializedAgain = try ONNXExporter.serialize(again)
      if serializedAgain != serialized {
        return fail(
          bytes, label, "round trip is not a fixed point (\(serialized.count) vs \(serializedAgain.count) bytes)")
      }
    } catch {
      return fail(bytes, label, "the re-imported model does not serialize: \(error)")
    }
    return .imported
  }

  private static func verifies(_ model: Model, _ bytes: [UInt8], _ label: String, _ stage: String) -> Bool {
    do {
      try model.graph.verify()
      for function in model.functions { try function.body.verify() }
      return true
    } catch {
      fail(bytes, label, "\(stage): the graph does not verify: \(error)")
      return false
    }
  }

  /// Records an issue naming the input, saved to a temporary file to reproduce it with
  /// `.build-fuzz/importer-fuzzer <file>` or `rebirth inspect <file>`.
  @discardableResult
  private static func fail(_ bytes: [UInt8], _ label: String, _ what: String) -> Outcome {
    var saved = "(not saved)"
    if let folder = try? TestEnvironment.makeTemporaryDirectory() {
      let url = folder.appendingPathComponent("fuzz-failure.onnx")
      if (try? Data(bytes).write(to: url)) != nil { saved = url.path }
    }
    Issue.record("\(label): \(what); input (\(bytes.count) bytes) saved to \(saved)")
    return .broken
  }

  // MARK: Tests

  /// The regression folder is there (with its README), every file in it is an input kept by
  /// fuzz/run.sh (named <kind>-<sha1>.onnx) and small, and every seed, regression inputs
  /// included, holds the property as it is. The good fixtures import: the round trip is reached.
  @Test func seedsAndRegressionInputsHoldTheProperty() throws {
    let readme = Self.regressionFolder.appendingPathComponent("README.md")
    #expect(FileManager.default.fileExists(atPath: readme.path), "fixtures/fuzz-regressions/README.md is missing")
    let entries = try FileManager.default.contentsOfDirectory(atPath: Self.regressionFolder.path)
    for entry in entries where entry != "README.md" {
      let parts = entry.split(separator: "-")
      let sha = parts.count == 2 && parts[1].hasSuffix(".onnx") ? parts[1].dropLast(5) : ""
      #expect(
        ["crash", "leak", "timeout", "oom"].contains(parts.first ?? "") && sha.count == 40
          && sha.allSatisfy(\.isHexDigit),
        "unexpected file fixtures/fuzz-regressions/\(entry): fuzz/run.sh keeps <kind>-<sha1>.onnx")
    }
    let regressions = Self.regressionFiles
    #expect(regressions.count == entries.count - 1, "every file but README.md is a regression input")
    for (name, url) in regressions {
      let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
      #expect(size <= 128 * 1024, "\(name) is \(size) bytes: minimize it (importer-fuzzer -minimize_crash=1)")
    }

    let good = Self.onnxFiles(in: TestEnvironment.fixtures, prefix: "").map(\.0)
    let bad = Self.onnxFiles(in: TestEnvironment.fixtures.appendingPathComponent("bad"), prefix: "bad/").map(\.0)
    #expect(good.count >= 10 && bad.count >= 10, "the fixtures are missing: \(good.count) good, \(bad.count) bad")
    #expect(Self.seeds.count == good.count + bad.count + regressions.count, "a seed could not be read")
    for seed in Self.seeds {
      let outcome = Self.check(seed.bytes, seed.name)
      if good.contains(seed.name) { #expect(outcome == .imported, "\(seed.name) is a good fixture but was refused") }
      if bad.contains(seed.name) { #expect(outcome == .refused, "\(seed.name) is a bad fixture but was imported") }
    }
  }

  /// Mutations per seed; a few thousand in all. Large seeds get fewer (each costs more).
  static func mutationCount(_ seed: Seed) -> Int { seed.bytes.count > 16 * 1024 ? 120 : 240 }

  /// Deterministic mutations of every seed hold the property; structure-aware ones get past the
  /// wire format into the importer (some of the good fixtures' mutants import).
  @Test(arguments: seeds)
  func mutationsHoldTheProperty(_ seed: Seed) {
    var random = FuzzRandom(seed: seed.name.utf8.reduce(0x5EED) { $0 &* 31 &+ UInt64($1) })
    let tree = FuzzWireMessage.parse(seed.bytes[...], depth: 0)
    var imported = 0
    var broken = 0
    for i in 0..<Self.mutationCount(seed) where broken < 3 {  // three reports per seed are enough
      let (mutant, how) = FuzzMutator.mutate(seed.bytes, tree: tree, &random)
      switch Self.check(mutant, "\(seed.name) mutation \(i) (\(how))") {
      case .imported: imported += 1
      case .broken: broken += 1
      case .refused: break
      }
    }
    if broken == 0, tree != nil, !seed.name.hasPrefix("bad/"), !seed.name.hasPrefix("fuzz-regressions/") {
      #expect(imported > 0, "no mutant of \(seed.name) imported: the mutations stop at the wire format")
    }
  }

  // MARK: What the fuzzer found

  /// fixtures/fuzz-regressions/crash-3765873d….onnx: a graph output declared with a type its
  /// initializer's data does not have (int64 [2] declared float16) imported into a graph that
  /// failed `verify()`. Such an output is now refused.
  @Test func outputDeclaredUnlikeItsInitializerIsRefused() throws {
    let p = ProtoBuilder()
    let w = p.tensor("w", .int64, [2]) { t in
      (t.pointee.n_int64_data, t.pointee.int64_data) = (2, p.array([1, 2] as [Int64]))
    }
    for (dtype, dims) in [(DType.float16, [2] as [Int64]), (.int64, [3]), (.int64, [2, 1]), (.int64, [])] {
      let g = p.graph(outputs: [p.valueInfo("w", dtype, dims)], initializers: [w])
      let message = importFailure { _ = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx") }
      #expect(message.contains("graph output 'w' is declared"), "\(dtype) \(dims): \(message)")
      #expect(message.contains("initializer holds int64 [2]"), "\(dtype) \(dims): \(message)")
    }
    // A declaration that agrees with the data, or an untyped one, is fine.
    for declared in [p.valueInfo("w", .int64, [2]), p.valueInfo("w")] {
      let g = p.graph(outputs: [declared], initializers: [w])
      let model = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx")
      try model.graph.verify()
    }
  }

  /// The same contradiction in `value_info` (an optional annotation) is dropped: the initializer
  /// keeps its data's type, as a graph input keeps its own declaration's.
  @Test func valueInfoContradictingAnInitializerIsIgnored() throws {
    let p = ProtoBuilder()
    let w = p.tensor("w", .int64, [2]) { t in
      (t.pointee.n_int64_data, t.pointee.int64_data) = (2, p.array([1, 2] as [Int64]))
    }
    let g = p.graph(nodes: [p.node("Identity", ["w"], ["y"])], outputs: [p.valueInfo("y")], initializers: [w])
    (g.pointee.n_value_info, g.pointee.value_info) = (1, p.pointers([p.valueInfo("w", .float16, [2, 2])]))
    let model = try ONNXImporter.load(bytes: p.pack(p.model(g)), path: "m.onnx")
    try model.graph.verify()
    let id = try #require(model.graph.value(named: "w"))
    #expect(model.graph[id].type == .tensor(.int64, shape: [.value(2)]))
    #expect(Self.check(p.pack(p.model(g)), "value_info contradicting an initializer") == .imported)
  }

  /// The structure-aware mutator's own parser and writer give back the bytes they read.
  @Test func wireTreeRoundTripsTheFixtures() throws {
    for seed in Self.seeds where !seed.name.hasPrefix("bad/") {
      let tree = try #require(FuzzWireMessage.parse(seed.bytes[...], depth: 0), "\(seed.name) does not parse")
      #expect(tree.serialized() == seed.bytes, "\(seed.name) does not round-trip through FuzzWireMessage")
    }
  }
}

// MARK: - Deterministic randomness

/// SplitMix64: small, fast, and the same sequence everywhere.
struct FuzzRandom {
  var generator: SplitMix64
  init(seed: UInt64) { generator = SplitMix64(seed: seed) }
  mutating func next() -> UInt64 { generator.next() }
  /// Uniform in 0..<n (n > 0).
  mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
  mutating func chance(_ oneIn: Int) -> Bool { below(oneIn) == 0 }
}

// MARK: - Protobuf wire format as a tree

/// A protobuf message parsed without its schema: a list of fields; a length-delimited field whose
/// payload parses as a message again holds it as `children` (a string or bytes field may parse
/// by chance: harmless, it is written back the same way).
struct FuzzWireMessage {
  struct Field {
    var number: UInt64
    var wireType: UInt8
    /// Varint value (wire type 0).
    var value: UInt64 = 0
    /// Raw payload: fixed32/fixed64 bytes, or a length-delimited payload that is not a message.
    var payload: [UInt8] = []
    /// A length-delimited payload that parses as a message.
    var children: FuzzWireMessage?
    /// Added to the length written for this field (length-field tampering); 0 when honest.
    var lengthSkew: Int = 0
  }

  var fields: [Field] = []

  /// Nesting followed at most this deep (onnx models nest far less; the importer refuses > 100).
  static let maxDepth = 24

  static func parse(_ bytes: ArraySlice<UInt8>, depth: Int) -> FuzzWireMessage? {
    var message = FuzzWireMessage()
    var pos = bytes.startIndex
    while pos < bytes.endIndex {
      guard let tag = readVarint(bytes, &pos) else { return nil }
      let number = tag >> 3
      let wireType = UInt8(tag & 7)
      guard number != 0, number <= 0x1FFF_FFFF else { return nil }
      var field = Field(number: number, wireType: wireType)
      switch wireType {
      case 0:
        guard let v = readVarint(bytes, &pos) else { return nil }
        field.value = v
      case 1, 5:
        let size = wireType == 1 ? 8 : 4
        guard bytes.endIndex - pos >= size else { return nil }
        field.payload = Array(bytes[pos..<pos + size])
        pos += size
      case 2:
        guard let length = readVarint(bytes, &pos), length <= UInt64(bytes.endIndex - pos) else { return nil }
        let payload = bytes[pos..<pos + Int(length)]
        pos += Int(length)
        if depth < maxDepth, !payload.isEmpty, let inner = parse(payload, depth: depth + 1) {
          field.children = inner
        } else {
          field.payload = Array(payload)
        }
      default:
        return nil
      }
      message.fields.append(field)
    }
    return message
  }

  static func readVarint(_ bytes: ArraySlice<UInt8>, _ pos: inout Int) -> UInt64? {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while pos < bytes.endIndex, shift < 64 {
      let byte = bytes[pos]
      pos += 1
      result |= UInt64(byte & 0x7F) << shift
      if byte & 0x80 == 0 { return result }
      shift += 7
    }
    return nil
  }

  static func writeVarint(_ value: UInt64, to out: inout [UInt8]) {
    var v = value
    while v >= 0x80 {
      out.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    out.append(UInt8(v))
  }

  func serialized() -> [UInt8] {
    var out: [UInt8] = []
    write(to: &out)
    return out
  }

  func write(to out: inout [UInt8]) {
    for field in fields {
      Self.writeVarint(field.number << 3 | UInt64(field.wireType), to: &out)
      switch field.wireType {
      case 0:
        Self.writeVarint(field.value, to: &out)
      case 2:
        let payload = field.children?.serialized() ?? field.payload
        let length = Int64(payload.count) + Int64(field.lengthSkew)
        Self.writeVarint(UInt64(bitPattern: length), to: &out)
        out += payload
      default:
        out += field.payload
      }
    }
  }

  /// Paths (child indices from the root) of every field, depth first.
  func fieldPaths(prefix: [Int] = [], into paths: inout [[Int]]) {
    for (i, field) in fields.enumerated() {
      paths.append(prefix + [i])
      field.children?.fieldPaths(prefix: prefix + [i], into: &paths)
    }
  }

  /// Applies `change` to the message holding the field at `path` (which must exist), with the
  /// field's index in it.
  mutating func withParent(of path: ArraySlice<Int>, _ change: (inout FuzzWireMessage, Int) -> Void) {
    if path.count == 1 {
      change(&self, path.first!)
    } else {
      fields[path.first!].children!.withParent(of: path.dropFirst(), change)
    }
  }
}

// MARK: - Mutations

enum FuzzMutator {
  /// Values that reach the edges of the importer's checks: counts, dtypes, dims, offsets.
  static let interestingValues: [UInt64] = [
    0, 1, 2, 3, 7, 8, 16, 17, 21, 22, 23, 24, 25, 0x7F, 0x80, 0xFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
    1 << 32, 1 << 62, UInt64(Int64.max), UInt64(bitPattern: Int64.min), UInt64.max, UInt64.max - 1,
  ]

  /// One mutant of `bytes` (whose wire tree is `tree`, if it parses), and what was done.
  static func mutate(_ bytes: [UInt8], tree: FuzzWireMessage?, _ random: inout FuzzRandom) -> ([UInt8], String) {
    var paths: [[Int]] = []
    tree?.fieldPaths(into: &paths)
    // Half of the mutants are structure-aware when the seed parses; stack one to three edits.
    if var tree, !paths.isEmpty, random.chance(2) {
      var edits: [String] = []
      for _ in 0..<(1 + random.below(3)) {
        paths.removeAll(keepingCapacity: true)
        tree.fieldPaths(into: &paths)
        guard !paths.isEmpty else { break }
        edits.append(structural(&tree, at: paths[random.below(paths.count)], &random))
      }
      return (tree.serialized(), edits.joined(separator: ", "))
    }
    var out = bytes
    var edits: [String] = []
    for _ in 0..<(1 + random.below(3)) { edits.append(byteLevel(&out, &random)) }
    return (out, edits.joined(separator: ", "))
  }

  /// Bit flips, byte overwrites, truncation, insertion, deletion, duplication of a range.
  static func byteLevel(_ out: inout [UInt8], _ random: inout FuzzRandom) -> String {
    guard !out.isEmpty else {
      out = (0..<(1 + random.below(8))).map { _ in UInt8(truncatingIfNeeded: random.next()) }
      return "fill"
    }
    let at = random.below(out.count)
    switch random.below(7) {
    case 0:
      let bit = random.below(8)
      out[at] ^= 1 << bit
      return "flip bit \(bit) at \(at)"
    case 1:
      out[at] = UInt8(truncatingIfNeeded: random.next())
      return "overwrite byte \(at)"
    case 2:
      out[at] = [0x00, 0x01, 0x7F, 0x80, 0xFF][random.below(5)]
      return "special byte at \(at)"
    case 3:
      out.removeSubrange(at...)
      return "truncate at \(at)"
    case 4:
      let count = 1 + random.below(16)
      out.insert(contentsOf: (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
      return "insert \(count) bytes at \(at)"
    case 5:
      let count = 1 + random.below(min(64, out.count - at))
      out.removeSubrange(at..<at + count)
      return "delete \(count) bytes at \(at)"
    default:
      let count = 1 + random.below(min(64, out.count - at))
      let chunk = Array(out[at..<at + count])
      out.insert(contentsOf: chunk, at: random.below(out.count + 1))
      return "duplicate \(count) bytes from \(at)"
    }
  }

  /// An edit of the field at `path`, lengths of the enclosing messages kept right (except for
  /// length tampering, which lies about one of them).
  static func structural(_ tree: inout FuzzWireMessage, at path: [Int], _ random: inout FuzzRandom) -> String {
    let where_ = path.map(String.init).joined(separator: ".")
    var description = ""
    let choice = random.below(8)
    tree.withParent(of: path[...]) { parent, i in
      var field = parent.fields[i]
      switch choice {
      case 0 where field.wireType == 2:
        // Length-field tampering: the length says more or less than the payload holds.
        let size = field.children?.serialized().count ?? field.payload.count
        let skews = [-1, 1, -2, 2, -size, 1 << 20, Int(Int32.max)]
        field.lengthSkew = skews[random.below(skews.count)]
        parent.fields[i] = field
        description = "length of field \(where_) skewed by \(field.lengthSkew)"
      case 0, 1:
        parent.fields.remove(at: i)
        description = "drop field \(where_)"
      case 2:
        parent.fields.insert(field, at: i + random.below(parent.fields.count - i + 1))
        description = "duplicate field \(where_)"
      case 3:
        let j = random.below(parent.fields.count)
        parent.fields.swapAt(i, j)
        description = "swap fields \(where_) and \(j)"
      case 4:
        // A scalar replaced: varints by edge values, fixed-width by random bits.
        switch field.wireType {
        case 0:
          field.value = interestingValues[random.below(interestingValues.count)]
          if random.chance(3) { field.value = random.next() % 64 }
        case 2 where field.children == nil:
          if field.payload.isEmpty {
            field.payload = [UInt8(truncatingIfNeeded: random.next())]
          } else {
            _ = byteLevel(&field.payload, &random)
          }
        default:
          field.payload = field.payload.map { _ in UInt8(truncatingIfNeeded: random.next()) }
        }
        parent.fields[i] = field
        description = "change value of field \(where_)"
      case 5:
        // The same payload under another field number or wire type.
        if random.chance(2) {
          field.number = UInt64(1 + random.below(26))
        } else {
          field.wireType = [0, 1, 2, 5][random.below(4)]
          if field.wireType == 1 { field.payload = Array(repeating: 0xFF, count: 8) }
          if field.wireType == 5 { field.payload = Array(repeating: 0x7F, count: 4) }
        }
        parent.fields[i] = field
        description = "retag field \(where_) as \(field.number)/\(field.wireType)"
      case 6:
        // A sibling's copy replaces this field's payload (names collide, subgraphs swap).
        let j = random.below(parent.fields.count)
        if parent.fields[j].wireType == field.wireType {
          let other = parent.fields[j]
          (field.value, field.payload, field.children) = (other.value, other.payload, other.children)
        }
        parent.fields[i] = field
        description = "copy field \(j) into \(where_)"
      default:
        // A message emptied, or a string/bytes payload cut short.
        if field.children != nil {
          field.children = nil
          field.payload = []
        } else if !field.payload.isEmpty {
          field.payload.removeSubrange(random.below(field.payload.count)...)
        }
        parent.fields[i] = field
        description = "empty or cut field \(where_)"
      }
    }
    return description
  }
}
