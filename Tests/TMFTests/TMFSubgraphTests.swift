import CZlib
import Exporters
import Foundation
import Graph
import GraphTesting
import Importers
import Runtime
import Testing

/// `.tmf` subgraphs (docs/tmf.md, "Subgraphs", since 1.2): If branches stored as graph records,
/// read back with their outer-scope references, and the reader's errors for damaged records.
@Suite struct TMFSubgraphTests {
  /// Printed without value types: the reader types outer references as the enclosing values they
  /// name, where the ONNX source usually leaves them untyped (see outerReferencesAreTyped).
  static let bare = TextOptions(includeValueInfo: false)

  /// if_nested's three paths: outer else (sum ≤ 0), inner then (max > 1), inner else (max ≤ 1).
  static let nestedFeeds: [[Float]] = [
    [-1, -2, 0.5, -0.25, -1, -1],
    [2, 1.5, 0.25, 3, -1, 0.5],
    [0.5, 0.25, 0.75, 0.125, 0.5, 1],
  ]

  @Test(arguments: ["if_subgraph.onnx", "if_nested.onnx"])
  func ifFixturesRoundTripOnEveryPath(name: String) throws {
    let model = try ONNXImporter.load(path: TestEnvironment.fixture(name))
    let producer = [MetadataEntry(key: "producer", value: model.producerName), MetadataEntry(key: "producer_version", value: model.producerVersion)]
    let back = try TMFReader.open(bytes: try TMFWriter.serialize(model, metadata: producer)).model
    try back.graph.verify()
    #expect(back.text(options: Self.bare) == model.text(options: Self.bare))
    for x in Self.nestedFeeds {
      try expectSameOutputs(model, back, feeds: ["x": NDArray(x, shape: [2, 3])])
    }
  }

  /// Nested If whose innermost graphs read `a` (the main graph's, through the middle graph's outer
  /// references) and `x`; the middle graph has an initializer of its own.
  static let nestedText = """
    <ir_version: 8, opset_import: ["" : 17]>
    g (bool c, bool d, float[2] x) => (float[2] y) {
      a = Add (x, x)
      y = If (c) <then_branch: graph = middle () => (float[2] r) <float[1] one = {1.0}> {
        t = Add (a, one)
        u = If (d) <then_branch: graph = inner_then () => (float[2] s) { s = Add (a, x) },
                    else_branch: graph = inner_else () => (float[2] s2) { s2 = Sub (t, x) }>
        r = Mul (t, u)
      }, else_branch: graph = other () => (float[2] e) { e = Neg (x) }>
    }
    """

  @Test func nestedIfWithOuterReferencesRoundTrips() throws {
    let model = try Model(parsing: Self.nestedText)
    let bytes = try TMFWriter.serialize(model)
    let back = try TMFReader.open(bytes: bytes).model
    try back.graph.verify()
    #expect(back.text(options: Self.bare) == model.text(options: Self.bare))
    let file = TMFBytes(bytes)
    #expect(file.count(.subgraphs) == 4)
    for (c, d) in [(true, true), (true, false), (false, true)] {
      let feeds = ["c": NDArray([c], shape: []), "d": NDArray([d], shape: []), "x": NDArray([Float(0.5), -1.5], shape: [2])]
      try expectSameOutputs(model, back, feeds: feeds)
    }
  }

  @Test func outerReferencesAreTyped() throws {
    let back = try TMFReader.open(bytes: try TMFWriter.serialize(try Model(parsing: Self.nestedText))).model
    guard case .graph(let middle)? = back.graph[back.graph.nodeIDs[1]].attribute("then_branch")?.value else {
      Issue.record("no then_branch")
      return
    }
    let x = try #require(middle.value(named: "x"))
    #expect(middle.outerReferences.map { middle[$0].name }.sorted() == ["a", "d", "x"])
    #expect(middle[x].type == .tensor(.float, shape: [.value(2)]))
  }

  @Test func aFileWithoutSubgraphsHasNoSubgraphSection() throws {
    let model = try ONNXImporter.load(path: TestEnvironment.fixture("mlp.onnx"))
    let file = TMFBytes(try TMFWriter.serialize(model))
    #expect(file.section(.subgraphs) == nil)
    #expect(file.u16(10) == Int(TMF.versionMinor))
  }

  // MARK: Nesting depth

  /// `levels` nested Ifs on one condition; the innermost branches read `x` from the main graph.
  static func deepText(levels: Int) -> String {
    func level(_ k: Int) -> String {
      let then = k == levels ? "graph = t\(k) () => (float[2] o\(k)) { o\(k) = Abs (x) }" : "graph = t\(k) () => (float[2] o\(k)) { o\(k) = If (c) <\(level(k + 1))> }"
      return "then_branch: \(then), else_branch: graph = e\(k) () => (float[2] n\(k)) { n\(k) = Neg (x) }"
    }
    return """
      <ir_version: 8, opset_import: ["" : 17]>
      g (bool c, float[2] x) => (float[2] y) { y = If (c) <\(level(1))> }
      """
  }

  @Test func subgraphsNestUpToTheLimit() throws {
    let model = try Model(parsing: Self.deepText(levels: TMF.maxGraphDepth))
    let back = try TMFReader.open(bytes: try TMFWriter.serialize(model)).model
    #expect(back.text(options: Self.bare) == model.text(options: Self.bare))
    try expectSameOutputs(model, back, feeds: ["c": NDArray([true], shape: []), "x": NDArray([Float(0.5), -1.5], shape: [2])])
  }

  @Test func theWriterRefusesDeeperNesting() throws {
    let model = try Model(parsing: Self.deepText(levels: TMF.maxGraphDepth + 1))
    #expect(throws: TMFWriteError("node '#0' (If): attribute 'then_branch': subgraphs nest deeper than 16 levels, the most .tmf stores")) {
      try TMFWriter.serialize(model)
    }
  }

  @Test(arguments: ["Loop", "Scan"])
  func loopAndScanAreRefusedAsUnsupportedOperators(op: String) throws {
    let model = try Model(parsing: """
      <ir_version: 8, opset_import: ["" : 17]>
      g (float[2] x) => (float[2] y) {
        y = \(op) (x) <body: graph = body (float[2] v) => (float[2] w) { w = Neg (v) }>
      }
      """)
    #expect(throws: TMFWriteError("node '#0' (\(op)): operator has no .tmf op code: rebirth's runtime does not run it (docs/tmf.md lists the operators)")) {
      try TMFWriter.serialize(model)
    }
  }

  // MARK: Damaged subgraph records

  /// The nested text model written, and one damage of it.
  private static func damaged(_ damage: (inout TMFBytes) -> Void, text: String = nestedText) throws -> String {
    var file = TMFBytes(try TMFWriter.serialize(try Model(parsing: text)))
    damage(&file)
    file.repairChecksums()
    do {
      _ = try TMFReader.open(bytes: file.bytes)
      return ""
    } catch {
      #expect(!error.message.contains("\n"))
      return error.message
    }
  }

  @Test func aGraphIndexOutOfRange() throws {
    let message = try Self.damaged { f in f.put64(99, f.graphAttributes()[0] + TMF.AttributeRecord.value) }
    #expect(message.contains("section 'attributes': record"), "\(message)")
    #expect(message.contains("field value: graph index 99 is out of range (subgraphs are graphs 1…4; 0 is the main graph)"), "\(message)")
  }

  @Test func aGraphThatContainsItself() throws {
    // The If inside graph `middle` made to hold `middle` itself.
    let message = try Self.damaged { f in
      let middle = f.subgraphIndex(named: "middle")
      let attribute = f.graphAttributes().first { f.attributeTarget($0) != middle && f.subgraphParent(f.attributeTarget($0)) == middle }!
      f.put64(UInt64(middle), attribute + TMF.AttributeRecord.value)
    }
    #expect(message.contains("a graph may not contain itself"), "\(message)")
  }

  @Test func aParentFieldNamingItsOwnGraph() throws {
    let message = try Self.damaged { f in
      let g = f.subgraphIndex(named: "inner_then")
      f.put32(UInt32(g), f.record(.subgraphs, g - 1) + TMF.SubgraphRecord.parent)
    }
    #expect(message.contains("'inner_then'): field parent: a graph may not contain itself"), "\(message)")
  }

  @Test func nestingPastTheLimit() throws {
    // Graphs are numbered parents first; re-parent the last graph under a graph at depth 16.
    let message = try Self.damaged(
      { f in
        let depths = f.subgraphDepths()
        let deepest = depths.indices.first { depths[$0] == TMF.maxGraphDepth }!
        let last = depths.count - 1
        #expect(deepest < last)
        f.put32(UInt32(deepest), f.record(.subgraphs, last - 1) + TMF.SubgraphRecord.parent)
      }, text: Self.deepText(levels: TMF.maxGraphDepth))
    #expect(message.contains("field parent: the graph is nested 17 levels deep; .tmf allows at most 16"), "\(message)")
  }

  @Test func anOuterReferenceToAValueDefinedLater() throws {
    // Graph `other`'s outer reference `x` replaced by `y`, which the If itself produces.
    let message = try Self.damaged { f in
      let g = f.subgraphIndex(named: "other")
      let r = f.record(.subgraphs, g - 1)
      let pool = f.section(.u32Pool)!.offset
      f.put32(UInt32(f.tensorIndex(named: "y")), pool + 4 * f.u32(r + TMF.SubgraphRecord.outerStart))
    }
    #expect(message.contains("outer reference 0: tensor"), "\(message)")
    #expect(message.contains("is not defined in the enclosing graph before the node holding this graph"), "\(message)")
  }

  @Test func aTensorOfAGraphThatDoesNotExist() throws {
    let message = try Self.damaged { f in f.put32(9, f.record(.tensors, f.tensorIndex(named: "one")) + TMF.TensorRecord.graph) }
    #expect(message.contains("('one'): field graph: 9 is out of range (5 graphs"), "\(message)")
  }

  @Test func nodeRangesThatDoNotFollowEachOther() throws {
    let message = try Self.damaged { f in
      let r = f.record(.subgraphs, 1)
      f.put32(UInt32(f.u32(r + TMF.SubgraphRecord.nodesStart) + 1), r + TMF.SubgraphRecord.nodesStart)
    }
    #expect(message.contains("field nodes_start:"), "\(message)")
    #expect(message.contains("each graph's nodes follow the previous graph's"), "\(message)")
  }

  @Test func oneGraphHeldTwice() throws {
    let message = try Self.damaged { f in
      let attributes = f.graphAttributes()
      let main = attributes.filter { f.subgraphParent(f.attributeTarget($0)) == 0 }
      f.put64(UInt64(f.attributeTarget(main[0])), main[1] + TMF.AttributeRecord.value)
    }
    #expect(message.contains("is already held by another attribute"), "\(message)")
  }

  /// Seeded single-byte changes of a file with subgraphs, checksums repaired: an error or a valid
  /// model, never a trap.
  @Test func mutationsNeverTrap() throws {
    let good = TMFBytes(try TMFWriter.serialize(try Model(parsing: Self.nestedText)))
    let end = good.section(.data)?.offset ?? good.bytes.count
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for _ in 0..<3000 {
      state ^= state << 13; state ^= state >> 7; state ^= state << 17
      var file = good
      file.bytes[Int(state % UInt64(end))] ^= UInt8(truncatingIfNeeded: state >> 32) | 1
      file.repairChecksums()
      if let model = try? TMFReader.open(bytes: file.bytes).model { try model.graph.verify() }
    }
  }
}

/// Runs both models on `feeds` and expects identical outputs.
private func expectSameOutputs(_ a: Model, _ b: Model, feeds: [String: NDArray], sourceLocation: SourceLocation = #_sourceLocation) throws {
  let options = SessionOptions(threadCount: 1)
  let expected = try Session(model: a, options: options).run(feeds)
  let actual = try Session(model: b, options: options).run(feeds)
  #expect(Set(expected.keys) == Set(actual.keys), sourceLocation: sourceLocation)
  for (name, reference) in expected {
    #expect(actual[name]?.shape == reference.shape, sourceLocation: sourceLocation)
    #expect(actual[name]?.scalars(as: Float.self) == reference.scalars(as: Float.self), "output '\(name)'", sourceLocation: sourceLocation)
  }
}

/// A written `.tmf`'s bytes with the lookups and patches the damage tests need (docs/tmf.md).
private struct TMFBytes {
  var bytes: [UInt8]
  init(_ bytes: [UInt8]) { self.bytes = bytes }

  func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
  func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
  func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
  mutating func put32(_ v: UInt32, _ o: Int) { for i in 0..<4 { bytes[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
  mutating func put64(_ v: UInt64, _ o: Int) { for i in 0..<8 { bytes[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }

  func section(_ kind: TMF.SectionKind) -> (offset: Int, length: Int, entry: Int)? {
    for i in 0..<u32(TMF.Header.sectionCount) {
      let e = u64(TMF.Header.sectionTableOffset) + i * TMF.sectionEntrySize
      if u32(e) == Int(kind.rawValue) { return (u64(e + 8), u64(e + 16), e) }
    }
    return nil
  }

  func count(_ kind: TMF.SectionKind) -> Int { section(kind).map { u32($0.offset) } ?? 0 }
  func record(_ kind: TMF.SectionKind, _ i: Int) -> Int {
    let s = section(kind)!
    return s.offset + TMF.tableHeaderSize + i * u32(s.offset + 4)
  }

  func string(_ i: Int) -> String {
    let s = section(.strings)!.offset
    let blob = s + 8 + 8 * u32(s)
    let (start, length) = (u32(s + 8 + 8 * i), u32(s + 12 + 8 * i))
    return String(decoding: bytes[(blob + start)..<(blob + start + length)], as: UTF8.self)
  }

  func tensorIndex(named name: String) -> Int {
    (0..<count(.tensors)).first { string(u32(record(.tensors, $0))) == name }!
  }

  /// The graph index (record + 1) of the subgraph with this name.
  func subgraphIndex(named name: String) -> Int {
    (0..<count(.subgraphs)).first { string(u32(record(.subgraphs, $0))) == name }! + 1
  }

  func subgraphParent(_ g: Int) -> Int { g == 0 ? -1 : u32(record(.subgraphs, g - 1) + TMF.SubgraphRecord.parent) }

  /// Depth of every graph, the main graph's (0) first.
  func subgraphDepths() -> [Int] {
    var depths = [0]
    for g in 1...count(.subgraphs) { depths.append(depths[subgraphParent(g)] + 1) }
    return depths
  }

  /// File offsets of the graph-typed attribute records.
  func graphAttributes() -> [Int] {
    (0..<count(.attributes)).map { record(.attributes, $0) }.filter { u32($0 + TMF.AttributeRecord.type) == 5 }
  }

  func attributeTarget(_ attribute: Int) -> Int { u32(attribute + TMF.AttributeRecord.value) }

  /// Recomputes every section's CRC-32, the table's and the header's, so that the structural
  /// checks (not the checksums) must catch a damage.
  mutating func repairChecksums() {
    func crc(_ start: Int, _ count: Int) -> UInt32 {
      guard count > 0 else { return 0 }
      return bytes.withUnsafeBytes { UInt32(truncatingIfNeeded: crc32(0, $0.baseAddress!.assumingMemoryBound(to: Bytef.self) + start, uInt(count))) }
    }
    guard bytes.count >= TMF.headerSize else { return }
    let count = u32(TMF.Header.sectionCount), table = u64(TMF.Header.sectionTableOffset)
    guard bytes.count >= TMF.headerSize, count < 64, table >= 0, table <= bytes.count - count * TMF.sectionEntrySize else { return }
    for i in 0..<count {
      let e = table + i * TMF.sectionEntrySize
      let (offset, length) = (u64(e + 8), u64(e + 16))
      if offset >= 0, length >= 0, offset <= bytes.count, bytes.count - offset >= length { put32(crc(offset, length), e + 24) }
    }
    put32(crc(table, count * TMF.sectionEntrySize), TMF.Header.sectionTableCRC)
    put32(crc(0, TMF.Header.headerCRC), TMF.Header.headerCRC)
  }
}
