import Graph
import GraphTesting
import Passes
import Testing

/// A two-head self-attention layer on x [2,3,4] (B = 2, S = 3, hidden 4, head size 2).
private struct AttentionLayer {
  var scores = "scores = Div (qk, c)"
  var scoresName = "scores"
  var keyHeads = "kt = Transpose <perm = [0, 2, 3, 1]> (kh)"
  var qBias = "qp = Add (qm, bq)"
  var maskInput = ""
  var extraOutputs = ""
  var extraNodes = ""
  var inputType = "float[2,3,4] x"
  var weightInputs = ""
  var vHeadShape = "hs"
  var mergeShape = "ms"
  var outputType = "float[2,3,4] y"
  var softmaxAxis = "-1"
  var scale = "float c = {1.4142135}"

  static let wq = floatLiteral(16, seed: 1, scale: 0.5), wk = floatLiteral(16, seed: 2, scale: 0.5)
  static let wv = floatLiteral(16, seed: 3, scale: 0.5)
  static let bq = "{0.1, -0.2, 0.3, 0.05}", bk = "{-0.1, 0.2, 0.0, 0.4}", bv = "{0.3, 0.1, -0.3, 0.2}"

  var initializers: String {
    var list = [
      "float[4,4] wk = \(Self.wk)", "float[4,4] wv = \(Self.wv)", "float[4] bq = \(Self.bq)", "float[4] bk = \(Self.bk)",
      "float[4] bv = \(Self.bv)", "int64[4] hs = {0, 0, 2, 2}", "int64[4] hv = {0, 0, 1, 4}", "int64[3] ms = {0, 0, 4}",
      "int64[3] m8 = {0, 0, 8}",
      scale,
    ]
    if weightInputs.isEmpty { list.insert("float[4,4] wq = \(Self.wq)", at: 0) }
    return list.joined(separator: ", ")
  }

  var text: String {
    """
    <ir_version: 8, opset_import: ["" : 17]>
    g (\(inputType)\(weightInputs)\(maskInput)) => (\(outputType)\(extraOutputs)) <\(initializers)> {
      qm = MatMul (x, wq)
      \(qBias)
      qh = Reshape (qp, hs)
      qt = Transpose <perm = [0, 2, 1, 3]> (qh)
      km = MatMul (x, wk)
      kp = Add (km, bk)
      kh = Reshape (kp, hs)
      \(keyHeads)
      vm = MatMul (x, wv)
      vp = Add (vm, bv)
      vh = Reshape (vp, \(vHeadShape))
      vt = Transpose <perm = [0, 2, 1, 3]> (vh)
      qk = MatMul (qt, kt)
      \(scores)
      probs = Softmax <axis = \(softmaxAxis)> (\(scoresName))
      ctx = MatMul (probs, vt)
      ctxt = Transpose <perm = [0, 2, 1, 3]> (ctx)
      merged = Reshape (ctxt, \(mergeShape))
      y = Neg (merged)
      \(extraNodes)
    }
    """
  }

  /// [Wq | Wk | Wv] row by row, and [bq | bk | bv], as literals.
  static var packedWeight: String {
    let (q, k, v) = (elements(wq), elements(wk), elements(wv))
    let rows = (0..<4).map { r in (q[(4 * r)..<(4 * r + 4)] + k[(4 * r)..<(4 * r + 4)] + v[(4 * r)..<(4 * r + 4)]) }
    return "{" + rows.flatMap { $0 }.joined(separator: ", ") + "}"
  }
  static var packedBias: String { "{" + (elements(bq) + elements(bk) + elements(bv)).joined(separator: ", ") + "}" }

  private static func elements(_ literal: String) -> [String] {
    literal.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
  }

  /// The fused layer, with `attributes` on the Attention node and `extra` inputs after the bias.
  static func fused(attributes: String = "num_heads = 2", extraInputs: String = "", inputs: String = "float[2,3,4] x")
    -> String
  {
    """
    <ir_version: 8, opset_import: ["" : 17, "com.microsoft" : 1]>
    g (\(inputs)) => (float[2,3,4] y) <float[4,12] attention_qkv_weight = \(packedWeight), float[12] attention_qkv_bias = \(packedBias)> {
      [attention] merged = com.microsoft.Attention <\(attributes)> (x, attention_qkv_weight, attention_qkv_bias\(extraInputs))
      y = Neg (merged)
    }
    """
  }
}

@Suite struct FuseAttentionTests {
  @Test func divisionByTheDefaultScale() throws {
    try assertRewrite(FuseAttention.self, AttentionLayer().text, becomes: AttentionLayer.fused())
  }

  /// Scale variants: Mul by a constant on either side, no scaling at all, a Div by something else.
  @Test(arguments: [
    ("scores = Mul (qk, c)", "float c = {0.5}", "num_heads = 2, scale = 0.5"),
    ("scores = Mul (c, qk)", "float[1] c = {0.70710677}", "num_heads = 2"),
    ("scores = Div (qk, c)", "float c = {4.0}", "num_heads = 2, scale = 0.25"),
    ("scores = Identity (qk)", "float c = {1.0}", "num_heads = 2, scale = 1.0"),
  ])
  func scales(scores: String, scale: String, attributes: String) throws {
    var layer = AttentionLayer(scores: scores, scale: scale)
    if scores.contains("Identity") { (layer.scores, layer.scoresName) = ("", "qk") }
    try assertRewrite(FuseAttention.self, layer.text, becomes: AttentionLayer.fused(attributes: attributes))
  }

  /// K transposed in two steps, and the bias added on the left.
  @Test func variantsOfTheProjections() throws {
    let layer = AttentionLayer(
      keyHeads: "ktt = Transpose <perm = [0, 2, 1, 3]> (kh)\n  kt = Transpose <perm = [0, 1, 3, 2]> (ktt)",
      qBias: "qp = Add (bq, qm)", softmaxAxis: "3")
    try assertRewrite(FuseAttention.self, layer.text, becomes: AttentionLayer.fused())
  }

  /// An additive mask [B,1,S,S] becomes attention_bias; one [B,1,1,S] is expanded to it first.
  @Test(arguments: [("float[2,1,3,3] m", ""), ("float[2,1,1,3] m", "expand")])
  func mask(maskType: String, expand: String) throws {
    let layer = AttentionLayer(
      scores: "scaled = Div (qk, c)\n  scores = Add (scaled, m)", maskInput: ", \(maskType)")
    let outcome = try runPass(FuseAttention.self, on: layer.text)
    let graph = outcome.model.graph
    let attention = try #require(graph.nodeIDs.map { graph[$0] }.first { $0.opType == OpType.Contrib.attention })
    #expect(attention.inputs.count == 6 && attention.input(3) == nil && attention.input(4) == nil)
    let bias = try #require(attention.input(5))
    if expand.isEmpty {
      #expect(graph[bias].name == "m")
    } else {
      let node = try #require(graph.producer(of: bias))
      #expect(node.opType == OpType.expand && graph.constantInts(node.input(1)) == [1, 1, 3, 3])
    }
    #expect(graph.nodeCount == (expand.isEmpty ? 2 : 3))
    try expectSameOutputs(try Model(parsing: layer.text), outcome.model)
  }

  // MARK: Guards

  @Test func probabilitiesReadTwice() throws {
    try assertNoRewrite(
      FuseAttention.self, AttentionLayer(extraOutputs: ", float[2,2,3,3] p2", extraNodes: "p2 = Neg (probs)").text)
  }

  @Test func intermediateIsAGraphOutput() throws {
    try assertNoRewrite(FuseAttention.self, AttentionLayer(extraOutputs: ", float[2,3,4] qp").text)
  }

  @Test func weightIsAGraphInput() throws {
    try assertNoRewrite(FuseAttention.self, AttentionLayer(weightInputs: ", float[4,4] wq").text)
  }

  @Test func shapesUnknown() throws {
    try assertNoRewrite(FuseAttention.self, AttentionLayer(inputType: "float x").text)
  }

  /// V in one head of 4 while Q and K have two of 2: valid ONNX (the heads broadcast), no Attention.
  @Test func headsSplitDifferently() throws {
    try assertNoRewrite(
      FuseAttention.self, AttentionLayer(vHeadShape: "hv", mergeShape: "m8", outputType: "float[2,3,8] y").text)
  }

  @Test func softmaxOnAnotherAxis() throws {
    try assertNoRewrite(FuseAttention.self, AttentionLayer(softmaxAxis: "2").text)
  }

  @Test func scaleNotAScalar() throws {
    try assertNoRewrite(FuseAttention.self, AttentionLayer(scale: "float[3] c = {1.0, 2.0, 3.0}").text)
  }

  @Test func scaleOfZero() throws {
    try assertNoRewrite(FuseAttention.self, AttentionLayer(scores: "scores = Mul (qk, c)", scale: "float c = {0.0}").text)
  }

  @Test func maskOfAnotherShape() throws {
    try assertNoRewrite(
      FuseAttention.self,
      AttentionLayer(scores: "scaled = Div (qk, c)\n  scores = Add (scaled, m)", maskInput: ", float[3,3] m").text)
  }
}

@Suite struct FuseAttentionGeluTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"
  let constants = "float s = {1.4142135}, float one = {1.0}, float half = {0.5}"

  /// The spellings of x·½·(1 + erf(x/√2)) exporters write.
  @Test(arguments: [
    "d = Div (x, s)\n e = Erf (d)\n a = Add (e, one)\n m = Mul (x, a)\n y = Mul (m, half)",
    "d = Div (x, s)\n e = Erf (d)\n a = Add (one, e)\n m = Mul (a, half)\n y = Mul (x, m)",
    "d = Div (x, s)\n e = Erf (d)\n a = Add (e, one)\n m = Mul (half, x)\n y = Mul (a, m)",
    "d = Mul (x, r)\n e = Erf (d)\n a = Add (e, one)\n m = Mul (x, a)\n y = Mul (half, m)",
  ])
  func erfGelu(body: String) throws {
    try assertRewrite(
      FuseAttention.self,
      """
      \(header)
      g (float[2,5] x) => (float[2,5] z) <\(constants), float r = {0.70710677}> {
        \(body)
        z = Neg (y)
      }
      """,
      becomes: """
        <ir_version: 8, opset_import: ["" : 17, "com.microsoft" : 1]>
        g (float[2,5] x) => (float[2,5] z) {
          [gelu] y = com.microsoft.Gelu (x)
          z = Neg (y)
        }
        """)
  }

  @Test func standardGeluFromOpset20() throws {
    try assertRewrite(
      FuseAttention.self,
      """
      <ir_version: 9, opset_import: ["" : 20]>
      g (float[2,5] x) => (float[2,5] y) <\(constants)> {
        d = Div (x, s)
        e = Erf (d)
        a = Add (e, one)
        m = Mul (x, a)
        y = Mul (m, half)
      }
      """,
      becomes: """
        <ir_version: 9, opset_import: ["" : 20]>
        g (float[2,5] x) => (float[2,5] y) {
          [gelu] y = Gelu (x)
        }
        """)
  }

  /// Constants the formula does not have, an intermediate read twice, another x in the product.
  @Test(arguments: [
    ("float s = {1.4142}, float one = {1.0}, float half = {0.5}", "m = Mul (x, a)", ""),
    ("float s = {1.4142135}, float one = {1.0}, float half = {0.49}", "m = Mul (x, a)", ""),
    ("float s = {1.4142135}, float one = {2.0}, float half = {0.5}", "m = Mul (x, a)", ""),
    ("float s = {1.4142135}, float one = {1.0}, float half = {0.5}", "m = Mul (x, a)", "w = Neg (e)"),
    ("float s = {1.4142135}, float one = {1.0}, float half = {0.5}", "m = Mul (x2, a)", ""),
    ("float[1,1,1] s = {1.4142135}, float one = {1.0}, float half = {0.5}", "m = Mul (x, a)", ""),
  ])
  func declines(constants: String, product: String, extra: String) throws {
    try assertNoRewrite(
      FuseAttention.self,
      """
      \(header)
      g (float[2,5] x, float[2,5] x2) => (float[2,5] y\(extra.isEmpty ? "" : ", float[2,5] w")) <\(constants)> {
        d = Div (x, s)
        e = Erf (d)
        a = Add (e, one)
        \(product)
        y = Mul (m, half)
        \(extra)
      }
      """)
  }

  @Test func constantIsAGraphInput() throws {
    try assertNoRewrite(
      FuseAttention.self,
      """
      \(header)
      g (float[2,5] x, float half) => (float[2,5] y) <float s = {1.4142135}, float one = {1.0}> {
        d = Div (x, s)
        e = Erf (d)
        a = Add (e, one)
        m = Mul (x, a)
        y = Mul (m, half)
      }
      """)
  }
}
