import Foundation
import Testing

@testable import Graph

private func ints(_ name: String, _ values: [Int64]) -> Attribute { Attribute(name, .ints(values)) }
private func int(_ name: String, _ value: Int64) -> Attribute { Attribute(name, .int(value)) }
private func text(_ name: String, _ value: String) -> Attribute { Attribute(name, .string(Array(value.utf8))) }

/// x[N,3,32,32] → Conv 3×3/16 pad 1 → Relu → MaxPool 2×2/2 → Conv 3×3/32 pad 1 → Relu
/// → GlobalAveragePool → Flatten → Gemm 32→10.
private func smallConvNet(batch: String = "1") -> ShapeTestGraph {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[\(batch),3,32,32]")
  let c1 = t.node(OpType.conv, [x, t.weight("w1", [16, 3, 3, 3]), t.weight("b1", [16])], [ints("pads", [1, 1, 1, 1])])
  let p1 = t.node(OpType.maxPool, [t.node(OpType.relu, [c1])], [ints("kernel_shape", [2, 2]), ints("strides", [2, 2])])
  let c2 = t.node(OpType.conv, [p1, t.weight("w2", [32, 16, 3, 3]), t.weight("b2", [32])], [ints("pads", [1, 1, 1, 1])])
  let g = t.node(OpType.globalAveragePool, [t.node(OpType.relu, [c2])])
  let f = t.node(OpType.flatten, [g])
  let y = t.node(OpType.gemm, [f, t.weight("w3", [10, 32]), t.weight("b3", [10])], [int("transB", 1)])
  t.graph.addOutput(y)
  return t
}

private func model(_ t: ShapeTestGraph) -> Model {
  var m = Model(graph: t.graph)
  m.opsetImports = [OpsetImport(domain: "", version: 17)]
  return m
}

/// conv1: 1·16·32·32 outputs × 3·3·3 = 442 368; conv2: 1·32·16·16 × 16·3·3 = 1 179 648;
/// gemm: 1·10 × 32 = 320.
private let smallConvNetMACs = 442_368 + 1_179_648 + 320

@Test func smallConvNetStatistics() {
  let s = model(smallConvNet()).statistics()
  #expect(s.macs == smallConvNetMACs)
  #expect(s.unknownMACNodes == 0)
  #expect(!s.assumedSymbolicDimsAs1)
  #expect(s.macSummary == "MACs: 1622336")
  // 16·27 + 16 + 32·144 + 32 + 10·32 + 10.
  #expect(s.parameterCount == 5418)
  #expect(s.bytesByDType == ["float": 5418 * 4])
  #expect(s.parameterBytes == 21672)
  #expect(s.nodeCount == 8 && s.topLevelNodeCount == 8)
  #expect(s.opTypeHistogram.map(\.opType) == ["Conv", "Flatten", "Gemm", "GlobalAveragePool", "MaxPool", "Relu"])
  #expect(s.opTypeHistogram.map(\.count) == [2, 1, 1, 1, 1, 2])
}

@Test func symbolicBatchIsCountedAsOne() {
  let s = model(smallConvNet(batch: "N")).statistics()
  #expect(s.macs == smallConvNetMACs)
  #expect(s.assumedSymbolicDimsAs1)
  #expect(s.macSummary == "MACs: 1622336, symbolic dims taken as 1")
}

@Test func nodesOfUnknownShapeAreCountedApart() {
  var t = ShapeTestGraph()
  let x = t.input("x", "float")  // rank unknown
  let c = t.node(OpType.conv, [x, t.weight("w", [4, 3, 3, 3])])
  let m = t.node(OpType.matMul, [t.node("Opaque", [c]), t.weight("v", [8, 2])])
  let y = t.node(OpType.matMul, [t.input("z", "float[5,8]"), t.weight("u", [8, 2])])
  t.graph.addOutput(m)
  t.graph.addOutput(y)
  let s = model(t).statistics()
  #expect(s.macs == 5 * 2 * 8)
  #expect(s.unknownMACNodes == 2)
  #expect(s.macSummary == "MACs: ≥ 80 (2 nodes of unknown shape)")
}

@Test func macsOfOtherLayers() {
  var t = ShapeTestGraph()
  // ConvTranspose: input elements 1·4·5·5 × W[1:] 2·3·3 = 1800.
  t.node(OpType.convTranspose, [t.input("x", "float[1,4,5,5]"), t.weight("w", [4, 2, 3, 3])])
  // Batched MatMul: output 2·3·5 × K 4 = 120.
  t.node(OpType.matMul, [t.input("a", "float[2,3,4]"), t.weight("b", [4, 5])])
  // Bidirectional LSTM, T 5, batch 2, input 10, hidden 20: 5·2·2·4·20·(10 + 20) = 48 000.
  t.node(OpType.lstm, [t.input("s", "float[5,2,10]"), t.weight("lw", [2, 80, 10]), t.weight("lr", [2, 80, 20])],
    [int("hidden_size", 20), text("direction", "bidirectional")], outputs: ["y", "yh", "yc"])
  // GRU with layout 1 and hidden size from the weights: 3·4·1·3·6·(7 + 6) = 2808.
  t.node(OpType.gru, [t.input("g", "float[3,4,7]"), t.weight("gw", [1, 18, 7]), t.weight("gr", [1, 18, 6])], [int("layout", 1)], outputs: ["gy"])
  // Elementwise and data movement: 0.
  t.node(OpType.add, [t.input("p", "float[100]"), t.input("q", "float[100]")])
  let s = model(t).statistics()
  #expect(s.macs == 1800 + 120 + 48_000 + 2808)
  #expect(s.unknownMACNodes == 0)
}

@Test func constantsSubgraphsAndDomainsAreCounted() {
  var t = ShapeTestGraph()
  let shape = t.node(OpType.constant, [], [Attribute("value_ints", .ints([1, 6]))])
  let x = t.input("x", "float[2,3]")
  let r = t.node(OpType.reshape, [x, shape])
  var body = ShapeTestGraph()
  let outer = try! body.graph.addOuterReference(name: t.graph[r].name)
  body.graph.addOutput(body.node(OpType.matMul, [outer, body.weight("bw", [6, 4])]))
  t.node(OpType.if, [t.input("c", "bool[]")], [Attribute("then_branch", .graph(body.graph)), Attribute("else_branch", .graph(body.graph))])
  t.node("FusedConv", [x], domain: "com.microsoft")
  t.node(OpType.relu, [x], domain: "ai.onnx")
  let s = model(t).statistics()
  #expect(s.topLevelNodeCount == 5)
  #expect(s.nodeCount == 7)
  #expect(s.opTypeHistogram.map(\.opType) == ["Constant", "If", "MatMul", "Relu", "Reshape", "com.microsoft::FusedConv"])
  // Two int64s in the Constant, 24 floats in each branch.
  #expect(s.parameterCount == 2 + 48)
  #expect(s.bytesByDType == ["int64": 16, "float": 192])
  // Each branch: [1,6]·[6,4] = 1·4 outputs × 6.
  #expect(s.macs == 2 * 24)
  #expect(s.unknownMACNodes == 0)
}

@Test func statisticsRoundTripThroughJSON() throws {
  let s = model(smallConvNet(batch: "N")).statistics()
  let data = try JSONEncoder().encode(s)
  #expect(try JSONDecoder().decode(GraphStatistics.self, from: data) == s)
}

@Test func graphStatisticsUseTheTypesAsTheyAre() {
  // Without inference the graph's node outputs have no types: every MAC node is unknown.
  let s = smallConvNet().graph.statistics()
  #expect(s.macs == 0)
  #expect(s.unknownMACNodes == 3)
}

/// A fused layer (domain ai.rebirth, see FusedActivation) is inferred and counted as its layer.
@Test func fusedLayersCountLikeTheirLayer() throws {
  func model(_ conv: String) throws -> Model {
    try Model(parsing: """
      <ir_version: 8, opset_import: ["" : 17, "ai.rebirth" : 1]>
      g (float[1,4,8,8] x) => (float[1,6,8,8] y) <float[6,4,3,3] w = ["location": "#digest:0000000000000001"]> {
        y = \(conv) (x, w)
      }
      """)
  }
  let plain = try model("Conv <pads = [1, 1, 1, 1]>").statistics()
  let fused = try model("ai.rebirth.Conv <pads = [1, 1, 1, 1], activation = \"Relu\">").statistics()
  #expect(plain.macs == 6 * 4 * 9 * 64)
  #expect(fused.macs == plain.macs)
  #expect(fused.unknownMACNodes == 0)
}
