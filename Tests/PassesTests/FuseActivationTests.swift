import Graph
import GraphTesting
import Passes
import Testing

@Suite struct FuseActivationTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"
  let fusedHeader = "<ir_version: 8, opset_import: [\"\" : 17, \"ai.rebirth\" : 1]>"

  @Test func convRelu() throws {
    try assertRewrite(
      FuseActivation.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,3,4,4] z) <float[3,2,3,3] w = \(floatLiteral(54)), float[3] b = {1.0, -1.0, 0.5}> {
        c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
        y = Relu (c)
        z = Neg (y)
      }
      """,
      becomes: """
        \(fusedHeader)
        g (float[1,2,4,4] x) => (float[1,3,4,4] z) <float[3,2,3,3] w = \(floatLiteral(54)), float[3] b = {1.0, -1.0, 0.5}> {
          [conv_relu] y = ai.rebirth.Conv <activation = "Relu", pads = [1, 1, 1, 1]> (x, w, b)
          z = Neg (y)
        }
        """)
  }

  /// Each activation, with its parameters, after a Gemm whose result is the graph output.
  @Test(arguments: [
    ("Relu ", "", "\"Relu\""),
    ("Clip ", ", lo, hi", "\"Clip\", activation_params = [-0.5, 6.0]"),
    ("LeakyRelu <alpha = 0.2> ", "", "\"LeakyRelu\", activation_params = [0.2]"),
    ("LeakyRelu ", "", "\"LeakyRelu\", activation_params = [0.01]"),
    ("Sigmoid ", "", "\"Sigmoid\""),
    ("HardSigmoid <alpha = 0.25, beta = 0.75> ", "", "\"HardSigmoid\", activation_params = [0.25, 0.75]"),
    ("HardSigmoid ", "", "\"HardSigmoid\", activation_params = [0.2, 0.5]"),
    ("HardSwish ", "", "\"HardSwish\""),
    ("Tanh ", "", "\"Tanh\""),
  ])
  func gemmActivation(activation: String, extraInputs: String, recorded: String) throws {
    try assertRewrite(
      FuseActivation.self,
      """
      \(header)
      g (float[2,4] x) => (float[2,3] y) <float[3,4] w = \(floatLiteral(12)), float lo = {-0.5}, float hi = {6.0}> {
        c = Gemm <transB = 1> (x, w)
        y = \(activation)(c\(extraInputs))
      }
      """,
      becomes: """
        \(fusedHeader)
        g (float[2,4] x) => (float[2,3] y) <float[3,4] w = \(floatLiteral(12))> {
          [gemm_\(recordedOp(recorded))] y = ai.rebirth.Gemm <activation = \(recorded), transB = 1> (x, w)
        }
        """)
  }

  /// "hardsigmoid" from "\"HardSigmoid\", activation_params = …".
  func recordedOp(_ recorded: String) -> String {
    String(recorded.dropFirst().prefix { $0 != "\"" }).lowercased()
  }

  @Test func clipAttributesBeforeOpset11() throws {
    let old = "<ir_version: 7, opset_import: [\"\" : 9]>"
    try assertRewrite(
      FuseActivation.self,
      """
      \(old)
      g (float[2,4] x) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12))> {
        c = MatMul (x, w)
        y = Clip <min = 0.0, max = 6.0> (c)
      }
      """,
      becomes: """
        <ir_version: 7, opset_import: ["" : 9, "ai.rebirth" : 1]>
        g (float[2,4] x) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12))> {
          [matmul_clip] y = ai.rebirth.MatMul <activation = "Clip", activation_params = [0.0, 6.0]> (x, w)
        }
        """)
  }

  @Test func convTransposeHardSwishChain() throws {
    // Two layers, two fusions; the fused layer feeds the next (standard) layer.
    try assertRewrite(
      FuseActivation.self,
      """
      \(header)
      g (float[1,2,3,3] x) => (float[1,2,4,4] z) <float[2,2,2,2] w = \(floatLiteral(16)), float[2,2,1,1] v = {1.0, -1.0, 0.5, 2.0}> {
        c = ConvTranspose (x, w)
        y = HardSwish (c)
        d = Conv (y, v)
        z = Tanh (d)
      }
      """,
      becomes: """
        \(fusedHeader)
        g (float[1,2,3,3] x) => (float[1,2,4,4] z) <float[2,2,2,2] w = \(floatLiteral(16)), float[2,2,1,1] v = {1.0, -1.0, 0.5, 2.0}> {
          [convtranspose_hardswish] y = ai.rebirth.ConvTranspose <activation = "HardSwish"> (x, w)
          [conv_tanh] z = ai.rebirth.Conv <activation = "Tanh"> (y, v)
        }
        """)
  }

  // MARK: Guards

  @Test func layerOutputWithSecondUse() throws {
    try assertNoRewrite(
      FuseActivation.self,
      """
      \(header)
      g (float[2,4] x) => (float[2,3] y, float[2,3] z) <float[4,3] w = \(floatLiteral(12))> {
        c = MatMul (x, w)
        y = Relu (c)
        z = Neg (c)
      }
      """)
  }

  @Test func layerOutputIsGraphOutput() throws {
    try assertNoRewrite(
      FuseActivation.self,
      """
      \(header)
      g (float[2,4] x) => (float[2,3] y, float[2,3] c) <float[4,3] w = \(floatLiteral(12))> {
        c = MatMul (x, w)
        y = Relu (c)
      }
      """)
  }

  @Test func clipWithNonConstantMin() throws {
    try assertNoRewrite(
      FuseActivation.self,
      """
      \(header)
      g (float[2,4] x, float lo) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12))> {
        c = MatMul (x, w)
        y = Clip (c, lo)
      }
      """)
  }

  @Test func clipMinThatIsAnOverridableInitializer() throws {
    try assertNoRewrite(
      FuseActivation.self,
      """
      \(header)
      g (float[2,4] x, float lo) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12)), float lo = {0.0}> {
        c = MatMul (x, w)
        y = Clip (c, lo)
      }
      """)
  }

  @Test(arguments: ["Elu", "Softplus", "Abs"])
  func activationNotInTheList(op: String) throws {
    try assertNoRewrite(
      FuseActivation.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,1,1] w = \(floatLiteral(6))> {
        c = Conv (x, w)
        y = \(op) (c)
      }
      """)
  }

  @Test func activationAfterOtherLayer() throws {
    try assertNoRewrite(
      FuseActivation.self,
      """
      \(header)
      g (float[2,4] x, float[2,4] t) => (float[2,4] y) {
        c = Add (x, t)
        y = Relu (c)
      }
      """)
  }

  @Test func alreadyFusedLayerIsLeftAlone() throws {
    try assertNoRewrite(
      FuseActivation.self,
      """
      \(fusedHeader)
      g (float[2,4] x) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12))> {
        c = ai.rebirth.MatMul <activation = "Relu"> (x, w)
        y = Sigmoid (c)
      }
      """)
  }

  @Test func defaultForTmfAndContribONNX() {
    #expect(FuseActivation.isDefault(for: .tmf))
    #expect(FuseActivation.isDefault(for: .onnxContribOps))
    #expect(!FuseActivation.isDefault(for: .onnx))
    #expect(PassRegistry.all.last { $0.isExact }.map { $0 == FuseActivation.self } == true)
  }
}
