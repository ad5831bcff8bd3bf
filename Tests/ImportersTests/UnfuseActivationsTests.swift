import Exporters
import Graph
import GraphTesting
import Importers
import Testing

/// The ONNX exporter writes fused layers (`fuse-activation`) back as standard nodes.
@Suite struct UnfuseActivationsTests {
  @Test func writesStandardNodes() throws {
    let text = """
      <ir_version: 8, opset_import: ["" : 17, "ai.rebirth" : 1]>
      g (float[1,2,4,4] x) => (float[1,3,4,4] y, float[1,3] q) <
        float[3,2,3,3] w = \(floatLiteral(54)), float[3,3,3,3] w3 = \(floatLiteral(81, seed: 9)),
        float[3,3] v = \(floatLiteral(9))
      > {
        [conv1] c = ai.rebirth.Conv <activation = "Clip", activation_params = [0.0, 6.0], pads = [1, 1, 1, 1]> (x, w)
        y = ai.rebirth.Conv <activation = "LeakyRelu", activation_params = [0.2], pads = [1, 1, 1, 1]> (c, w3)
        f = GlobalAveragePool (y)
        s = Flatten (f)
        [mm] q = ai.rebirth.MatMul <activation = "Clip", activation_params = [-1.0, 0.5]> (s, v)
      }
      """
    let model = try Model(parsing: text)
    let unfused = model.unfusingActivations()
    #expect(!unfused.graph.nodeIDs.contains { unfused.graph[$0].domain == FusedActivation.domain })
    #expect(!unfused.opsetImports.contains { $0.domain == FusedActivation.domain })
    let expected = try Model(
      parsing: """
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[1,2,4,4] x) => (float[1,3,4,4] y, float[1,3] q) <
          float[3,2,3,3] w = \(floatLiteral(54)), float[3,3,3,3] w3 = \(floatLiteral(81, seed: 9)),
          float[3,3] v = \(floatLiteral(9)), float c_min = {0.0}, float c_max = {6.0}, float q_min = {-1.0},
          float q_max = {0.5}
        > {
          [conv1] c_unfused = Conv <pads = [1, 1, 1, 1]> (x, w)
          [conv1_clip] c = Clip (c_unfused, c_min, c_max)
          y_unfused = Conv <pads = [1, 1, 1, 1]> (c, w3)
          y = LeakyRelu <alpha = 0.2> (y_unfused)
          f = GlobalAveragePool (y)
          s = Flatten (f)
          [mm] q_unfused = MatMul (s, v)
          [mm_clip] q = Clip (q_unfused, q_min, q_max)
        }
        """)
    #expect(unfused.text(options: goldenTextOptions) == expected.text(options: goldenTextOptions))
    try expectSameOutputs(model, unfused, tolerance: 0)

    // Through the byte writer: what is read back is the unfused model.
    let bytes = try ONNXExporter.serialize(model)
    let reread = try ONNXImporter.load(bytes: bytes, path: "<memory>")
    #expect(reread.text(options: goldenTextOptions) == expected.text(options: goldenTextOptions))
  }

  @Test func clipAttributesBeforeOpset11() throws {
    let model = try Model(
      parsing: """
        <ir_version: 7, opset_import: ["" : 9, "ai.rebirth" : 1]>
        g (float[2,4] x) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12))> {
          y = ai.rebirth.MatMul <activation = "Clip", activation_params = [0.0, 6.0]> (x, w)
        }
        """)
    let expected = try Model(
      parsing: """
        <ir_version: 7, opset_import: ["" : 9]>
        g (float[2,4] x) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12))> {
          y_unfused = MatMul (x, w)
          y = Clip <min = 0.0, max = 6.0> (y_unfused)
        }
        """)
    #expect(model.unfusingActivations().text(options: goldenTextOptions) == expected.text(options: goldenTextOptions))
  }

  @Test func modelWithoutFusedLayersIsUnchanged() throws {
    let text = """
      <ir_version: 8, opset_import: ["" : 17]>
      g (float[2,4] x) => (float[2,4] y) {
        y = Relu (x)
      }
      """
    let model = try Model(parsing: text)
    #expect(model.unfusingActivations().text() == model.text())
  }
}
