import Testing

@testable import Graph

/// Builds small graphs for shape inference tests and reads types back as `float[N,3,?]`.
struct ShapeTestGraph {
  var graph = Graph(name: "test")

  /// A tensor type from `float[N,3,?]` (`?` unknown, a name symbolic, `float` unranked).
  static func type(_ spec: String) -> ValueType {
    guard let open = spec.firstIndex(of: "[") else { return .tensor(DType(name: spec)!, shape: nil) }
    let dtype = DType(name: String(spec[..<open]))!
    let body = spec[spec.index(after: open)..<spec.index(before: spec.endIndex)]
    let dims: [Dim] = body.isEmpty ? [] : body.split(separator: ",").map { part in
      if part == "?" { return .unknown }
      return Int(part).map(Dim.value) ?? .param(String(part))
    }
    return .tensor(dtype, shape: dims)
  }

  @discardableResult
  mutating func input(_ name: String, _ spec: String) -> ValueID {
    try! graph.addInput(name: name, type: Self.type(spec))
  }

  /// A float initializer of zeros.
  @discardableResult
  mutating func weight(_ name: String, _ shape: [Int]) -> ValueID {
    try! graph.addInitializer(name: name, Tensor(floats: Array(repeating: 0, count: checkedElementCount(shape)!), shape: shape))
  }

  /// A 1-D int64 initializer.
  @discardableResult
  mutating func ints(_ name: String, _ values: [Int64], shape: [Int]? = nil) -> ValueID {
    try! graph.addInitializer(name: name, Tensor(int64s: values, shape: shape ?? [values.count]))
  }

  /// A float scalar or 1-D initializer.
  @discardableResult
  mutating func floats(_ name: String, _ values: [Float], shape: [Int]? = nil) -> ValueID {
    try! graph.addInitializer(name: name, Tensor(floats: values, shape: shape ?? [values.count]))
  }

  /// Adds a node; returns its first output.
  @discardableResult
  mutating func node(
    _ op: String, _ inputs: [ValueID?], _ attributes: [Attribute] = [], outputs: [String]? = nil, domain: String = ""
  ) -> ValueID {
    let names = outputs ?? [graph.uniqueName("out")]
    let id = try! graph.addNode(opType: op, domain: domain, inputs: inputs, outputs: names, attributes: attributes)
    return graph[id].outputs.compactMap { $0 }.first ?? inputs[0]!
  }

  mutating func infer(opset: Int64 = 18) -> [ShapeInferenceIssue] { graph.inferShapes(opset: opset) }

  /// The type of `value` as `float[N,3,?]`, or "nil".
  func type(_ value: ValueID) -> String {
    graph[value].type.map(ShapeInference.render) ?? "nil"
  }

  func type(_ name: String) -> String { type(graph.value(named: name)!) }
}

private func ints(_ name: String, _ values: [Int64]) -> Attribute { Attribute(name, .ints(values)) }
private func int(_ name: String, _ value: Int64) -> Attribute { Attribute(name, .int(value)) }
private func text(_ name: String, _ value: String) -> Attribute { Attribute(name, .string(Array(value.utf8))) }

/// Infers a one-node graph over inputs of the given types and returns its first output's type.
private func inferOne(
  _ op: String, _ inputs: [String], _ attributes: [Attribute] = [], opset: Int64 = 18
) -> (String, [ShapeInferenceIssue]) {
  var t = ShapeTestGraph()
  let values = inputs.enumerated().map { t.input("x\($0.offset)", $0.element) }
  let y = t.node(op, values, attributes)
  let issues = t.infer(opset: opset)
  return (t.type(y), issues)
}

// MARK: Convolution and pooling

struct ConvCase: CustomTestStringConvertible, Sendable {
  var input: String
  var weight: [Int]
  var attributes: [Attribute]
  var expected: String
  var testDescription: String { expected }
}

@Test(arguments: [
  // 3×3, pad 1: the batch symbol and the spatial extents survive.
  ConvCase(input: "float[N,3,32,32]", weight: [8, 3, 3, 3], attributes: [ints("pads", [1, 1, 1, 1])], expected: "float[N,8,32,32]"),
  // SAME_UPPER, stride 2, odd input: ⌈7/2⌉ = 4.
  ConvCase(input: "float[1,3,7,7]", weight: [8, 3, 3, 3], attributes: [text("auto_pad", "SAME_UPPER"), ints("strides", [2, 2])], expected: "float[1,8,4,4]"),
  ConvCase(input: "float[1,3,7,7]", weight: [8, 3, 3, 3], attributes: [text("auto_pad", "SAME_LOWER"), ints("strides", [2, 2])], expected: "float[1,8,4,4]"),
  // VALID, stride 2: ⌊(7 − 3)/2⌋ + 1 = 3.
  ConvCase(input: "float[1,3,7,7]", weight: [8, 3, 3, 3], attributes: [text("auto_pad", "VALID"), ints("strides", [2, 2])], expected: "float[1,8,3,3]"),
  // Dilation 2 makes a 3-tap kernel span 5: 10 − 5 + 1 = 6; with stride 2: ⌊5/2⌋ + 1 = 3.
  ConvCase(input: "float[1,3,10,10]", weight: [4, 3, 3, 3], attributes: [ints("dilations", [2, 2])], expected: "float[1,4,6,6]"),
  ConvCase(input: "float[1,3,10,10]", weight: [4, 3, 3, 3], attributes: [ints("dilations", [2, 2]), ints("strides", [2, 2])], expected: "float[1,4,3,3]"),
  // Asymmetric pads and a rectangular kernel: H: 9 + 0 + 1 − 3 + 1 = 8, W: 6 + 2 + 0 − 1 + 1 = 8.
  ConvCase(input: "float[2,3,9,6]", weight: [5, 3, 3, 1], attributes: [ints("pads", [0, 2, 1, 0])], expected: "float[2,5,8,8]"),
  // Depthwise: group = channels.
  ConvCase(input: "float[1,8,16,16]", weight: [8, 1, 3, 3], attributes: [int("group", 8), ints("pads", [1, 1, 1, 1])], expected: "float[1,8,16,16]"),
  // 1-D and 3-D.
  ConvCase(input: "float[2,4,10]", weight: [6, 4, 3], attributes: [], expected: "float[2,6,8]"),
  ConvCase(input: "float[1,2,5,6,7]", weight: [3, 2, 1, 1, 1], attributes: [], expected: "float[1,3,5,6,7]"),
  // A symbolic spatial extent survives a 1×1 stride-1 conv, not a 3×3 one without padding.
  ConvCase(input: "float[N,3,H,W]", weight: [8, 3, 1, 1], attributes: [], expected: "float[N,8,H,W]"),
  ConvCase(input: "float[N,3,H,W]", weight: [8, 3, 3, 3], attributes: [], expected: "float[N,8,?,?]"),
])
func convOutputShape(_ c: ConvCase) {
  var t = ShapeTestGraph()
  let x = t.input("x", c.input)
  let w = t.weight("w", c.weight)
  let y = t.node(OpType.conv, [x, w], c.attributes)
  #expect(t.infer().isEmpty)
  #expect(t.type(y) == c.expected)
}

@Test func convWithMismatchedGroupsIsReported() {
  var t = ShapeTestGraph()
  let y = t.node(OpType.conv, [t.input("x", "float[1,8,16,16]"), t.weight("w", [8, 2, 3, 3])], [int("group", 8)])
  let issues = t.infer()
  #expect(issues.count == 1 && issues.first?.kind == .invalidNode)
  #expect(t.type(y) == "float[1,8,14,14]")
}

@Test(arguments: [
  // 2·(5 − 1) + 1 + 3 − 2 = 10.
  ([Attribute("strides", .ints([2, 2])), ints("pads", [1, 1, 1, 1]), ints("output_padding", [1, 1])], 1, "float[1,2,10,10]"),
  ([ints("strides", [2, 2]), ints("output_shape", [11, 11])], 1, "float[1,2,11,11]"),
  ([ints("strides", [2, 2]), text("auto_pad", "SAME_UPPER")], 1, "float[1,2,10,10]"),
  // Groups multiply the output channels: W is [C, M/g, kh, kw].
  ([], 2, "float[1,4,7,7]"),
])
func convTransposeOutputShape(_ attributes: [Attribute], group: Int64, expected: String) {
  var t = ShapeTestGraph()
  let y = t.node(OpType.convTranspose, [t.input("x", "float[1,4,5,5]"), t.weight("w", [4, 2, 3, 3])], attributes + [int("group", group)])
  #expect(t.infer().isEmpty)
  #expect(t.type(y) == expected)
}

@Test(arguments: [
  ([ints("kernel_shape", [2, 2]), ints("strides", [2, 2])], "float[1,1,2,2]"),
  ([ints("kernel_shape", [2, 2]), ints("strides", [2, 2]), int("ceil_mode", 1)], "float[1,1,3,3]"),
  // 5 + 2 − 2 = 5: ⌈5/2⌉ + 1 = 4, but the last window would start in the end padding → 3.
  ([ints("kernel_shape", [2, 2]), ints("strides", [2, 2]), ints("pads", [1, 1, 1, 1]), int("ceil_mode", 1)], "float[1,1,3,3]"),
  ([ints("kernel_shape", [3, 3]), ints("strides", [2, 2]), ints("pads", [1, 1, 1, 1]), int("ceil_mode", 1)], "float[1,1,3,3]"),
  ([ints("kernel_shape", [3, 3]), ints("strides", [1, 1]), text("auto_pad", "SAME_UPPER")], "float[1,1,5,5]"),
])
func maxPoolOutputShape(_ attributes: [Attribute], expected: String) {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[1,1,5,5]")
  t.node(OpType.maxPool, [x], attributes, outputs: ["y", "indices"])
  #expect(t.infer().isEmpty)
  #expect(t.type("y") == expected)
  #expect(t.type("indices") == "int64" + expected.dropFirst("float".count))
}

@Test func averagePoolCeilModeAndGlobalPools() {
  // 6 + 2 − 3 = 5: floor gives 3, ceil gives 4 (the last window starts at 6, inside 6 + 1).
  #expect(inferOne(OpType.averagePool, ["float[N,2,6,6]"], [ints("kernel_shape", [3, 3]), ints("strides", [2, 2]), ints("pads", [1, 1, 1, 1])]).0 == "float[N,2,3,3]")
  #expect(inferOne(OpType.averagePool, ["float[N,2,6,6]"], [ints("kernel_shape", [3, 3]), ints("strides", [2, 2]), ints("pads", [1, 1, 1, 1]), int("ceil_mode", 1)]).0 == "float[N,2,4,4]")
  #expect(inferOne(OpType.globalAveragePool, ["float[N,512,7,7]"]).0 == "float[N,512,1,1]")
  #expect(inferOne(OpType.globalMaxPool, ["float[2,3,4,5,6]"]).0 == "float[2,3,1,1,1]")
}

@Test func poolingWithAWindowLargerThanItsInputIsReported() {
  let (type, issues) = inferOne(OpType.maxPool, ["float[1,1,2,2]"], [ints("kernel_shape", [3, 3])])
  #expect(type == "float[1,1,?,?]")
  #expect(issues.count == 2)
}

// MARK: Matrix products

@Test(arguments: [
  ("float[4,3]", "float[5,4]", [int("transA", 1), int("transB", 1)], "float[3,5]"),
  ("float[N,256]", "float[10,256]", [int("transB", 1)], "float[N,10]"),
  ("float[2,3]", "float[3,7]", [], "float[2,7]"),
])
func gemmOutputShape(_ a: String, _ b: String, _ attributes: [Attribute], expected: String) {
  let (type, issues) = inferOne(OpType.gemm, [a, b], attributes)
  #expect(issues.isEmpty)
  #expect(type == expected)
}

@Test(arguments: [
  ("float[3,4]", "float[4]", "float[3]"),
  ("float[4]", "float[4,5]", "float[5]"),
  ("float[4]", "float[4]", "float[]"),
  ("float[2,1,3,4]", "float[5,4,6]", "float[2,5,3,6]"),
  ("float[N,S,64]", "float[64,128]", "float[N,S,128]"),
  ("float[7]", "float[B,7,2]", "float[B,2]"),
])
func matMulOutputShape(_ a: String, _ b: String, expected: String) {
  let (type, issues) = inferOne(OpType.matMul, [a, b])
  #expect(issues.isEmpty)
  #expect(type == expected)
}

@Test func matMulWithMismatchedInnerDimensionsIsReported() {
  let (_, issues) = inferOne(OpType.matMul, ["float[3,4]", "float[5,6]"])
  #expect(issues.map(\.kind) == [.invalidNode])
}

// MARK: Elementwise

@Test(arguments: [
  (OpType.add, ["float[3,1,5]", "float[4,1]"], "float[3,4,5]"),
  (OpType.mul, ["float[N,1]", "float[1,5]"], "float[N,5]"),
  (OpType.sub, ["float[N,C]", "float[C]"], "float[N,C]"),
  (OpType.div, ["float[]", "float[2,3]"], "float[2,3]"),
  (OpType.pow, ["float[2,3]", "float[]"], "float[2,3]"),
  (OpType.max, ["float[2,1,1]", "float[3,1]", "float[4]"], "float[2,3,4]"),
  (OpType.sum, ["float[5]"], "float[5]"),
  (OpType.pRelu, ["float[N,16,8,8]", "float[16,1,1]"], "float[N,16,8,8]"),
  (OpType.equal, ["int64[3,1]", "int64[4]"], "bool[3,4]"),
  (OpType.less, ["float[N]", "float[N]"], "bool[N]"),
  (OpType.where, ["bool[2,1]", "int32[3]", "int32[2,3]"], "int32[2,3]"),
])
func broadcastingOutputShape(_ op: String, _ inputs: [String], expected: String) {
  let (type, issues) = inferOne(op, inputs)
  #expect(issues.isEmpty)
  #expect(type == expected)
}

@Test func shapesThatDoNotBroadcastAreReported() {
  let (type, issues) = inferOne(OpType.add, ["float[3]", "float[4]"])
  #expect(type == "float[?rank]")
  #expect(issues.count == 1)
}

@Test(arguments: [
  OpType.relu, OpType.sigmoid, OpType.tanh, OpType.clip, OpType.leakyRelu, OpType.hardSigmoid, OpType.hardSwish,
  OpType.gelu, OpType.erf, OpType.sqrt, OpType.exp, OpType.log, OpType.neg, OpType.abs, OpType.identity,
  OpType.softmax, OpType.logSoftmax, OpType.lrn, OpType.instanceNormalization, OpType.batchNormalization,
])
func unaryOpsKeepTheirInputType(_ op: String) {
  #expect(inferOne(op, ["float[N,3,H,W]"]).0 == "float[N,3,H,W]")
}

@Test func typeChangingElementwiseOps() {
  #expect(inferOne(OpType.cast, ["float[N,3]"], [int("to", Int64(DType.int64.rawValue))]).0 == "int64[N,3]")
  #expect(inferOne(OpType.not, ["bool[2]"]).0 == "bool[2]")
  #expect(inferOne(OpType.isNaN, ["float[2,2]"]).0 == "bool[2,2]")
  var t = ShapeTestGraph()
  let x = t.input("x", "float[N,S,768]")
  t.node(OpType.dropout, [x], outputs: ["d", "mask"])
  t.node(OpType.layerNormalization, [x, t.weight("g", [768])], [int("axis", -1)], outputs: ["ln", "mean", "inv"])
  #expect(t.infer().isEmpty)
  #expect(t.type("d") == "float[N,S,768]")
  #expect(t.type("mask") == "bool[N,S,768]")
  #expect(t.type("ln") == "float[N,S,768]")
  #expect(t.type("mean") == "float[N,S,1]")
}

// MARK: Reshaping

@Test(arguments: [
  ("float[2,3,4]", [0, -1] as [Int64], "float[2,12]"),
  ("float[N,3,4]", [0, -1], "float[N,12]"),
  ("float[N,3,4]", [-1, 12], "float[N,12]"),
  ("float[N,3,4]", [-1, 4], "float[?,4]"),
  ("float[2,3,4]", [4, 0, -1], "float[4,3,2]"),
  ("float[N,C]", [1, -1], "float[1,?]"),
])
func reshapeOutputShape(_ input: String, _ shape: [Int64], expected: String) {
  var t = ShapeTestGraph()
  let y = t.node(OpType.reshape, [t.input("x", input), t.ints("s", shape)])
  #expect(t.infer().isEmpty)
  #expect(t.type(y) == expected)
}

@Test func reshapeAllowZeroAndBadShapes() {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[0,4]")
  let keep = t.node(OpType.reshape, [x, t.ints("s", [4, 0])], [int("allowzero", 1)])
  let twoInferred = t.node(OpType.reshape, [x, t.ints("s2", [-1, -1])])
  let wrongCount = t.node(OpType.reshape, [t.input("z", "float[2,3]"), t.ints("s3", [4, 4])])
  let issues = t.infer()
  #expect(t.type(keep) == "float[4,0]")
  #expect(t.type(twoInferred) == "float[?rank]")
  #expect(t.type(wrongCount) == "float[4,4]")
  #expect(issues.count == 2)
}

/// Shape → Gather → Unsqueeze → Concat → Reshape, the flatten PyTorch exports.
@Test func reshapeToAShapeComputedInTheGraph() {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[N,3,8,8]")
  let s = t.node(OpType.shape, [x])
  let n = t.node(OpType.gather, [s, t.ints("zero", [0], shape: [])], [int("axis", 0)])
  let u = t.node(OpType.unsqueeze, [n, t.ints("axes", [0])])
  let c = t.node(OpType.concat, [u, t.ints("minus1", [-1])], [int("axis", 0)])
  let y = t.node(OpType.reshape, [x, c])
  let e = t.node(OpType.expand, [t.input("b", "float[1,1]"), t.node(OpType.shape, [y])])
  #expect(t.infer(opset: 13).isEmpty)
  #expect(t.type(s) == "int64[4]")
  #expect(t.type(n) == "int64[]")
  #expect(t.type(c) == "int64[2]")
  #expect(t.type(y) == "float[N,192]")
  #expect(t.type(e) == "float[N,192]")
}

@Test func flattenAndTranspose() {
  #expect(inferOne(OpType.flatten, ["float[N,512,1,1]"]).0 == "float[N,512]")
  #expect(inferOne(OpType.flatten, ["float[2,3,4]"], [int("axis", 0)]).0 == "float[1,24]")
  #expect(inferOne(OpType.flatten, ["float[2,3,4]"], [int("axis", -1)]).0 == "float[6,4]")
  #expect(inferOne(OpType.transpose, ["float[N,3,H,W]"]).0 == "float[W,H,3,N]")
  #expect(inferOne(OpType.transpose, ["float[N,3,H,W]"], [ints("perm", [0, 2, 3, 1])]).0 == "float[N,H,W,3]")
  #expect(inferOne(OpType.transpose, ["float[2,3]"], [ints("perm", [0, 0])]).1.count == 1)
}

struct AxesCase: CustomTestStringConvertible, Sendable {
  var opset: Int64
  var attribute: [Int64]?
  var input: [Int64]?
  var expected: String
  var testDescription: String { "opset \(opset) \(attribute.map { "attr \($0)" } ?? "") \(input.map { "input \($0)" } ?? "")" }
}

/// Squeeze reads `axes` from the attribute before opset 13 and from the second input from 13.
@Test(arguments: [
  AxesCase(opset: 11, attribute: [0], input: nil, expected: "float[3,1,5]"),
  AxesCase(opset: 11, attribute: [-2], input: nil, expected: "float[1,3,5]"),
  AxesCase(opset: 11, attribute: nil, input: nil, expected: "float[3,5]"),
  AxesCase(opset: 13, attribute: nil, input: [0], expected: "float[3,1,5]"),
  // From 13 an axes attribute is not part of the operator: every 1 goes.
  AxesCase(opset: 13, attribute: [0], input: nil, expected: "float[3,5]"),
  AxesCase(opset: 13, attribute: nil, input: [0, 2], expected: "float[3,5]"),
])
func squeezeAxesByOpset(_ c: AxesCase) {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[1,3,1,5]")
  let axes = c.input.map { t.ints("axes", $0) }
  let y = t.node(OpType.squeeze, axes.map { [x, $0] } ?? [x], c.attribute.map { [ints("axes", $0)] } ?? [])
  #expect(t.infer(opset: c.opset).isEmpty)
  #expect(t.type(y) == c.expected)
}

@Test(arguments: [
  AxesCase(opset: 11, attribute: [0, -1], input: nil, expected: "float[1,N,5,1]"),
  AxesCase(opset: 13, attribute: nil, input: [0, -1], expected: "float[1,N,5,1]"),
  AxesCase(opset: 13, attribute: nil, input: [1], expected: "float[N,1,5]"),
])
func unsqueezeAxesByOpset(_ c: AxesCase) {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[N,5]")
  let axes = c.input.map { t.ints("axes", $0) }
  let y = t.node(OpType.unsqueeze, axes.map { [x, $0] } ?? [x], c.attribute.map { [ints("axes", $0)] } ?? [])
  #expect(t.infer(opset: c.opset).isEmpty)
  #expect(t.type(y) == c.expected)
}

@Test func squeezingANonUnitAxisOrAnAxisOutOfRangeIsReported() {
  #expect(inferOne(OpType.squeeze, ["float[2,3]"], [ints("axes", [0])], opset: 11).1.count == 1)
  let (type, issues) = inferOne(OpType.squeeze, ["float[1,3]"], [ints("axes", [5])], opset: 11)
  #expect(type == "float[?rank]")
  #expect(issues.first?.message.contains("out of range") == true)
}

// MARK: Joining, splitting, indexing

@Test func concatAddsAlongItsAxis() {
  #expect(inferOne(OpType.concat, ["float[N,3,4]", "float[N,5,4]"], [int("axis", 1)]).0 == "float[N,8,4]")
  #expect(inferOne(OpType.concat, ["float[2,3]", "float[2,3]"], [int("axis", -2)]).0 == "float[4,3]")
  #expect(inferOne(OpType.concat, ["float[N,3]", "float[M,3]"], [int("axis", 0)]).0 == "float[?,3]")
  #expect(inferOne(OpType.concat, ["float[2,3]", "float[2,3,1]"], [int("axis", 0)]).1.count == 1)
}

@Test func splitBySizesOrIntoEqualParts() {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[N,7]")
  t.node(OpType.split, [x, t.ints("sizes", [2, 5])], [int("axis", 1)], outputs: ["a", "b"])
  t.node(OpType.split, [x], [int("axis", 1), int("num_outputs", 3)], outputs: ["c", "d", "e"])
  t.node(OpType.split, [t.input("z", "float[6]")], outputs: ["f", "g", "h"])
  #expect(t.infer(opset: 18).isEmpty)
  #expect([t.type("a"), t.type("b")] == ["float[N,2]", "float[N,5]"])
  #expect([t.type("c"), t.type("d"), t.type("e")] == ["float[N,3]", "float[N,3]", "float[N,1]"])
  #expect([t.type("f"), t.type("g"), t.type("h")] == ["float[2]", "float[2]", "float[2]"])
}

@Test func splitAttributeBeforeOpset13() {
  var t = ShapeTestGraph()
  t.node(OpType.split, [t.input("x", "float[4,6]")], [int("axis", 1), ints("split", [1, 5])], outputs: ["a", "b"])
  t.node(OpType.split, [t.input("z", "float[7]")], outputs: ["c", "d"])
  let issues = t.infer(opset: 11)
  #expect([t.type("a"), t.type("b")] == ["float[4,1]", "float[4,5]"])
  #expect(t.type("c") == "float[?]")
  #expect(issues.count == 1)  // 7 does not split evenly in two
}

struct SliceCase: CustomTestStringConvertible, Sendable {
  var input: String
  var starts: [Int64], ends: [Int64], axes: [Int64]?, steps: [Int64]?
  var expected: String
  var testDescription: String { "\(input)[\(starts):\(ends):\(steps ?? [])] → \(expected)" }
}

@Test(arguments: [
  SliceCase(input: "float[10,20]", starts: [1], ends: [-1], axes: [0], steps: nil, expected: "float[8,20]"),
  SliceCase(input: "float[10,20]", starts: [0, 5], ends: [Int64.max, 100], axes: [0, -1], steps: nil, expected: "float[10,15]"),
  // Negative steps: 9, 7, 5, 3, 1.
  SliceCase(input: "float[10]", starts: [-1], ends: [Int64.min], axes: nil, steps: [-2], expected: "float[5]"),
  // 8, 5.
  SliceCase(input: "float[10]", starts: [8], ends: [2], axes: nil, steps: [-3], expected: "float[2]"),
  // Reversal of everything keeps a symbolic extent; a step of 2 does not.
  SliceCase(input: "float[N,4]", starts: [-1], ends: [Int64.min], axes: [0], steps: [-1], expected: "float[N,4]"),
  SliceCase(input: "float[N,4]", starts: [0], ends: [Int64.max], axes: [0], steps: [2], expected: "float[?,4]"),
  SliceCase(input: "float[N,4]", starts: [1], ends: [3], axes: [1], steps: [1], expected: "float[N,2]"),
  // An empty slice.
  SliceCase(input: "float[5]", starts: [4], ends: [2], axes: nil, steps: nil, expected: "float[0]"),
])
func sliceOutputShape(_ c: SliceCase) {
  var t = ShapeTestGraph()
  var inputs: [ValueID?] = [t.input("x", c.input), t.ints("starts", c.starts), t.ints("ends", c.ends)]
  inputs.append(c.axes.map { t.ints("axes", $0) })
  if let steps = c.steps { inputs.append(t.ints("steps", steps)) }
  let y = t.node(OpType.slice, inputs)
  #expect(t.infer().isEmpty)
  #expect(t.type(y) == c.expected)
}

@Test func sliceWithAZeroStepIsReported() {
  var t = ShapeTestGraph()
  let y = t.node(OpType.slice, [t.input("x", "float[4]"), t.ints("s", [0]), t.ints("e", [4]), t.ints("a", [0]), t.ints("st", [0])])
  #expect(t.infer().count == 1)
  #expect(t.type(y) == "float[?]")
}

@Test func gatherPutsTheIndicesShapeInPlaceOfTheAxis() {
  #expect(inferOne(OpType.gather, ["float[5,6,7]", "int64[2,3]"], [int("axis", 1)]).0 == "float[5,2,3,7]")
  #expect(inferOne(OpType.gather, ["float[V,768]", "int64[N,S]"]).0 == "float[N,S,768]")
  #expect(inferOne(OpType.gather, ["float[5,6]", "int64[]"], [int("axis", -1)]).0 == "float[5]")
  #expect(inferOne(OpType.gather, ["float[5,6]", "int64[]"], [int("axis", 2)]).1.count == 1)
}

@Test func shapeAndSize() {
  #expect(inferOne(OpType.shape, ["float[N,3,8,8]"]).0 == "int64[4]")
  #expect(inferOne(OpType.shape, ["float[N,3,8,8]"], [int("start", 1), int("end", -1)]).0 == "int64[2]")
  #expect(inferOne(OpType.shape, ["float[N,3,8,8]"], [int("start", -10), int("end", 100)]).0 == "int64[4]")
  #expect(inferOne(OpType.size, ["float[N,3]"]).0 == "int64[]")
}

@Test func expandTileAndPad() {
  var t = ShapeTestGraph()
  let e = t.node(OpType.expand, [t.input("x", "float[3,1]"), t.ints("s", [2, 1, 4])])
  let tile = t.node(OpType.tile, [t.input("z", "float[N,3]"), t.ints("r", [1, 2])])
  let pad = t.node(OpType.pad, [t.input("p", "float[1,3,4,4]"), t.ints("pads", [0, 0, 1, 2, 0, 0, 1, 0])])
  #expect(t.infer(opset: 13).isEmpty)
  #expect(t.type(e) == "float[2,3,4]")
  #expect(t.type(tile) == "float[N,6]")
  #expect(t.type(pad) == "float[1,3,6,6]")
  // Before opset 11 the pads are an attribute.
  #expect(inferOne(OpType.pad, ["float[N,4]"], [ints("pads", [0, 1, 0, 1])], opset: 2).0 == "float[N,6]")
}

@Test func resizeByScalesOrSizes() {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[N,3,4,4]")
  let scaled = t.node(OpType.resize, [x, nil, t.floats("scales", [1, 1, 2, 2.5])])
  let sized = t.node(OpType.resize, [x, nil, nil, t.ints("sizes", [1, 3, 5, 7])])
  let axes = t.node(OpType.resize, [x, nil, nil, t.ints("hw", [9, 9])], [ints("axes", [2, 3])])
  #expect(t.infer(opset: 18).isEmpty)
  #expect(t.type(scaled) == "float[N,3,8,10]")
  #expect(t.type(sized) == "float[1,3,5,7]")
  #expect(t.type(axes) == "float[N,3,9,9]")
}

// MARK: Constants and generators

@Test func constantsAndGenerators() {
  var t = ShapeTestGraph()
  let ints = t.node(OpType.constant, [], [Attribute("value_ints", .ints([2, 3]))])
  let tensor = t.node(OpType.constant, [], [Attribute("value", .tensor(Tensor(floats: [1, 2, 3, 4], shape: [2, 2])))])
  let scalar = t.node(OpType.constant, [], [Attribute("value_float", .float(1))])
  let zeros = t.node(OpType.constantOfShape, [ints])
  let ones = t.node(OpType.constantOfShape, [ints], [Attribute("value", .tensor(Tensor(int64s: [1], shape: [1])))])
  let range = t.node(OpType.range, [t.ints("start", [0], shape: []), t.ints("limit", [10], shape: []), t.ints("delta", [3], shape: [])])
  let down = t.node(OpType.range, [t.floats("a", [1], shape: []), t.floats("b", [0], shape: []), t.floats("c", [-0.25], shape: [])])
  #expect(t.infer().isEmpty)
  #expect(t.type(ints) == "int64[2]")
  #expect(t.type(tensor) == "float[2,2]")
  #expect(t.type(scalar) == "float[]")
  #expect(t.type(zeros) == "float[2,3]")
  #expect(t.type(ones) == "int64[2,3]")
  #expect(t.type(range) == "int64[4]")
  #expect(t.type(down) == "float[4]")
}

// MARK: Reductions

@Test(arguments: [
  (OpType.reduceMean, 13, [ints("axes", [2, 3])], nil, "float[N,C,1,1]"),
  (OpType.reduceMean, 13, [ints("axes", [-1]), int("keepdims", 0)], nil, "float[N,C,H]"),
  (OpType.reduceSum, 13, [int("keepdims", 0)], [1] as [Int64]?, "float[N,H,W]"),
  (OpType.reduceMax, 18, [], [0, 1], "float[1,1,H,W]"),
  (OpType.reduceMax, 18, [int("keepdims", 0)], nil, "float[]"),
  (OpType.reduceSum, 18, [int("noop_with_empty_axes", 1)], nil, "float[N,C,H,W]"),
])
func reductionOutputShape(_ op: String, opset: Int64, _ attributes: [Attribute], _ axes: [Int64]?, expected: String) {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[N,C,H,W]")
  let y = t.node(op, [x] + (axes.map { [t.ints("axes", $0)] } ?? []), attributes)
  #expect(t.infer(opset: opset).isEmpty)
  #expect(t.type(y) == expected)
}

@Test func argMaxGivesInt64() {
  #expect(inferOne(OpType.argMax, ["float[N,10]"], [int("axis", 1), int("keepdims", 0)]).0 == "int64[N]")
  #expect(inferOne(OpType.argMin, ["float[N,10]"]).0 == "int64[1,10]")
}

// MARK: Recurrent layers

@Test func lstmShapesFromLayoutDirectionAndHiddenSize() {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[5,N,10]")
  let w = t.weight("w", [2, 80, 10])
  let r = t.weight("r", [2, 80, 20])
  t.node(OpType.lstm, [x, w, r], [int("hidden_size", 20), text("direction", "bidirectional")], outputs: ["y", "yh", "yc"])
  let xb = t.input("xb", "float[N,5,10]")
  t.node(OpType.gru, [xb, t.weight("wg", [1, 60, 10]), t.weight("rg", [1, 60, 20])], [int("layout", 1)], outputs: ["gy", "gh"])
  t.node(OpType.rnn, [x, t.weight("wr", [1, 7, 10]), t.weight("rr", [1, 7, 7])], outputs: ["", "rh"])
  #expect(t.infer().isEmpty)
  #expect(t.type("y") == "float[5,2,N,20]")
  #expect(t.type("yh") == "float[2,N,20]")
  #expect(t.type("yc") == "float[2,N,20]")
  #expect(t.type("gy") == "float[N,5,1,20]")
  #expect(t.type("gh") == "float[N,1,20]")
  #expect(t.type("rh") == "float[1,N,7]")
}

// MARK: Control flow

private func branch(_ name: String, outputShape: [Int]) -> Graph {
  var b = ShapeTestGraph()
  b.graph.name = name
  let x = try! b.graph.addOuterReference(name: "x")
  let w = b.weight("w_\(name)", [outputShape.last!, 4])
  let y = b.node(OpType.matMul, [x, b.node(OpType.transpose, [w])], outputs: ["out_\(name)"])
  b.graph.addOutput(y)
  return b.graph
}

@Test func ifTakesWhatItsBranchesAgreeOn() throws {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[N,4]")
  let c = t.input("c", "bool[]")
  let same = t.node(OpType.if, [c], [Attribute("then_branch", .graph(branch("a", outputShape: [3]))), Attribute("else_branch", .graph(branch("b", outputShape: [3])))])
  let differ = t.node(OpType.if, [c], [Attribute("then_branch", .graph(branch("c", outputShape: [3]))), Attribute("else_branch", .graph(branch("d", outputShape: [5])))])
  #expect(t.infer().isEmpty)
  #expect(t.type(same) == "float[N,3]")
  #expect(t.type(differ) == "float[N,?]")
  // The branches were annotated too, their outer reference with the type of what it names.
  let thenBranch = t.graph[t.graph.producer(of: same)!.id].attribute("then_branch")!.subgraphs[0]
  #expect(thenBranch[thenBranch.outputs[0]].type == ShapeTestGraph.type("float[N,3]"))
  #expect(thenBranch[thenBranch.value(named: "x")!].type == t.graph[x].type)
  try t.graph.verify()
  // A second run after the enclosing type changed finds no stale conflict inside.
  t.graph.updateValue(x) { $0.type = ShapeTestGraph.type("float[2,4]") }
  #expect(t.infer().isEmpty)
}

// MARK: Merging with declared types

@Test func declaredShapesAreRefinedButNeverLoosened() {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[1,3,8,8]")
  let a = t.node(OpType.relu, [x])
  let b = t.node(OpType.relu, [t.input("n", "float[N,3,8,8]")])
  let c = t.node(OpType.relu, [t.input("u", "float[?,3,?,?]")])
  t.graph.updateValue(a) { $0.type = ShapeTestGraph.type("float[N,3,8,?]") }
  t.graph.updateValue(b) { $0.type = ShapeTestGraph.type("float[1,3,8,8]") }
  t.graph.updateValue(c) { $0.type = ShapeTestGraph.type("float[M,3,8,8]") }
  #expect(t.infer().isEmpty)
  #expect(t.type(a) == "float[1,3,8,8]")  // a known extent replaces a symbol and an unknown
  #expect(t.type(b) == "float[1,3,8,8]")  // a declared extent stays
  #expect(t.type(c) == "float[M,3,8,8]")  // unknown inferred dims do not erase declared ones
}

@Test func conflictsAreReportedAndTheDeclaredTypeKept() {
  var t = ShapeTestGraph()
  let y = t.node(OpType.conv, [t.input("x", "float[1,3,32,32]"), t.weight("w", [8, 3, 3, 3])], [ints("pads", [1, 1, 1, 1])])
  let z = t.node(OpType.relu, [y])
  t.graph.updateValue(y) { $0.type = ShapeTestGraph.type("float[1,8,16,16]") }
  t.graph.updateValue(z) { $0.type = ShapeTestGraph.type("int32") }
  let issues = t.infer()
  #expect(issues.map(\.kind) == [.conflict, .conflict])
  #expect(issues.first?.message.contains("float[1,8,16,16]") == true)
  #expect(t.type(y) == "float[1,8,16,16]")
  #expect(t.type(z) == "int32[1,8,16,16]")
}

// MARK: Robustness

@Test func unknownOpsAndOtherDomainsAreLeftAlone() {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[2,3]")
  let custom = t.node("FancyOp", [x])
  let other = t.node(OpType.relu, [x], domain: "com.example")
  let after = t.node(OpType.relu, [custom])
  #expect(t.infer().isEmpty)
  #expect(t.type(custom) == "nil")
  #expect(t.type(other) == "nil")
  #expect(t.type(after) == "nil")
}

@Test(arguments: [
  (OpType.conv, ["float[3,3]", "float[2,3,3,3]"], [Attribute]()),
  (OpType.conv, ["float[1,3,4,4]", "float[2,3,3,3]"], [ints("strides", [0, 1])]),
  (OpType.conv, ["float[1,3,4,4]", "float[2,3,3,3]"], [text("auto_pad", "SOMETIMES")]),
  (OpType.maxPool, ["float[1,3,4,4]"], [ints("kernel_shape", [Int64.max, 1])]),
  (OpType.softmax, ["float"], []),
  (OpType.transpose, ["float[2,3]"], [ints("perm", [5, -9])]),
  (OpType.flatten, ["float[2,3]"], [int("axis", 7)]),
  (OpType.concat, ["float[2,3]", "float[2,3]"], [int("axis", Int64.min)]),
  (OpType.gemm, ["float[2]", "float[2,3,4]"], []),
  (OpType.matMul, ["float[]", "float[3]"], []),
  (OpType.topK, ["float[4]"], [int("axis", 3)]),
  (OpType.cast, ["float[2]"], [int("to", Int64.max)]),
  (OpType.lstm, ["float[2,3]"], [text("direction", "sideways")]),
  (OpType.if, ["bool[]"], []),
  (OpType.depthToSpace, ["float[1,8,2,2]"], [int("blocksize", 0)]),
])
func oddNodesAreReportedNotTrappedOn(_ op: String, _ inputs: [String], _ attributes: [Attribute]) {
  _ = inferOne(op, inputs, attributes)
}

@Test func oddConstantsDoNotTrap() {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[2,3]")
  t.node(OpType.reshape, [x, t.ints("s", [Int64.max, Int64.min])])
  t.node(OpType.slice, [x, t.ints("st", [Int64.min]), t.ints("en", [Int64.max]), t.ints("ax", [0]), t.ints("sp", [Int64.min])])
  t.node(OpType.range, [t.floats("a", [0], shape: []), t.floats("b", [.infinity], shape: []), t.floats("c", [1e-30], shape: [])])
  t.node(OpType.range, [t.ints("i", [Int64.min], shape: []), t.ints("j", [Int64.max], shape: []), t.ints("k", [-1], shape: [])])
  t.node(OpType.tile, [x, t.ints("r", [Int64.max, Int64.max])])
  t.node(OpType.resize, [t.input("r4", "float[1,1,2,2]"), nil, t.floats("sc", [1, 1, .infinity, 1e30])])
  t.node(OpType.constantOfShape, [t.ints("neg", [-3])])
  t.node(OpType.expand, [x, t.ints("big", [Int64.max, 3])])
  t.node(OpType.unsqueeze, [x, t.ints("ua", [0, 0])])
  _ = t.infer()
  try? t.graph.verify()
}

@Test func modelUsesItsDefaultDomainOpset() {
  var t = ShapeTestGraph()
  let x = t.input("x", "float[1,3,1,5]")
  let y = t.node(OpType.squeeze, [x], [ints("axes", [0])])
  var model = Model(graph: t.graph)
  model.opsetImports = [OpsetImport(domain: "com.example", version: 1), OpsetImport(domain: "", version: 11)]
  #expect(model.inferShapes().isEmpty)
  #expect(model.graph[y].type == ShapeTestGraph.type("float[3,1,5]"))
}
