import Exporters
import Foundation
import Graph
import GraphTesting
import Importers
import Testing

/// `--allow-contrib-ops`: fused layers written as onnxruntime's FusedConv/FusedGemm, and read back
/// as rebirth's fused layers (onnxruntime itself checks the numbers in the conformance suite's
/// `contrib_fused_layers` fixture).
@Suite struct ContribFusedLayersTests {
  static let fused = """
    <ir_version: 8, opset_import: ["" : 17, "ai.rebirth" : 1]>
    g (float[1,2,4,4] x, float[2,3] a) => (float[1,3,4,4] y, float[1,3,4,4] z, float[2,4] p, float[2,4] q, float[2,4] r) <
      float[3,2,3,3] w = \(floatLiteral(54)), float[3,3,1,1] w2 = \(floatLiteral(9, seed: 2)),
      float[3,4] v = \(floatLiteral(12, seed: 3)), float[4] vb = \(floatLiteral(4, seed: 4))
    > {
      [conv1] y = ai.rebirth.Conv <activation = "Clip", activation_params = [0.0, 6.0], pads = [1, 1, 1, 1]> (x, w)
      [conv2] z = ai.rebirth.Conv <activation = "HardSwish"> (y, w2)
      [fc1] p = ai.rebirth.Gemm <activation = "HardSigmoid", activation_params = [0.3, 0.4], alpha = 0.5> (a, v, vb)
      [fc2] q = ai.rebirth.Gemm <activation = "Clip", activation_params = [-0.5, 0.5]> (a, v, vb)
      [mm] r = ai.rebirth.MatMul <activation = "Relu"> (a, v)
    }
    """

  @Test func writesContribOpsWhereTheyExist() throws {
    let model = try Model(parsing: Self.fused)
    let contrib = model.contribFusingLayers()
    let expected = try Model(
      parsing: """
        <ir_version: 8, opset_import: ["" : 17, "ai.rebirth" : 1, "com.microsoft" : 1]>
        g (float[1,2,4,4] x, float[2,3] a) => (float[1,3,4,4] y, float[1,3,4,4] z, float[2,4] p, float[2,4] q, float[2,4] r) <
          float[3,2,3,3] w = \(floatLiteral(54)), float[3,3,1,1] w2 = \(floatLiteral(9, seed: 2)),
          float[3,4] v = \(floatLiteral(12, seed: 3)), float[4] vb = \(floatLiteral(4, seed: 4))
        > {
          [conv1] y = com.microsoft.FusedConv <pads = [1, 1, 1, 1], activation = "Clip", activation_params = [0.0, 6.0]> (x, w)
          [conv2] z = ai.rebirth.Conv <activation = "HardSwish"> (y, w2)
          [fc1] p = com.microsoft.FusedGemm <alpha = 0.5, activation = "HardSigmoid", activation_alpha = 0.3, activation_beta = 0.4> (a, v, vb)
          [fc2] q = ai.rebirth.Gemm <activation = "Clip", activation_params = [-0.5, 0.5]> (a, v, vb)
          [mm] r = ai.rebirth.MatMul <activation = "Relu"> (a, v)
        }
        """)
    #expect(contrib.text(options: goldenTextOptions) == expected.text(options: goldenTextOptions))

    // Read back, the contrib nodes are rebirth's fused layers again: same text, same numbers.
    let adopted = contrib.adoptingContribFusedLayers()
    #expect(!adopted.opsetImports.contains { $0.domain == ContribFusedLayers.domain })
    #expect(adopted.graph.nodeIDs.allSatisfy { adopted.graph[$0].domain == FusedActivation.domain })
    try expectSameOutputs(model, adopted, tolerance: 0)
  }

  @Test func exporterWritesContribOpsOnlyWhenAllowed() throws {
    let model = try Model(parsing: Self.fused)
    let plain = try ONNXImporter.load(bytes: try ONNXExporter.serialize(model), path: "<memory>")
    #expect(plain.opsetImports.allSatisfy { $0.domain != ContribFusedLayers.domain && $0.domain != FusedActivation.domain })

    let path = FileManager.default.temporaryDirectory.appendingPathComponent("contrib-\(getpid()).onnx").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try ONNXExporter.write(model, to: path, options: ONNXExportOptions(allowContribOps: true))
    let written = try ONNXImporter.load(path: path)
    // FusedConv and FusedGemm came back as fused layers; the rest were written as standard nodes.
    let ops = written.graph.nodeIDs.map { "\(written.graph[$0].domain):\(written.graph[$0].opType)" }.sorted()
    #expect(ops == [":Clip", ":Gemm", ":HardSwish", ":MatMul", ":Relu", ":Conv", "ai.rebirth:Conv", "ai.rebirth:Gemm"].sorted())
    try expectSameOutputs(model, written, tolerance: 0)
  }

  /// FusedConv with a fourth input (Z, a sum before the activation), an activation rebirth does
  /// not know, or FusedGemm without its parameters stay contrib nodes (the runtime then refuses
  /// them by name).
  @Test(arguments: [
    #"y = com.microsoft.FusedConv <activation = "Relu"> (x, w, b, x)"#,
    #"y = com.microsoft.FusedConv <activation = "Elu", activation_params = [1.0]> (x, w, b)"#,
    #"y = com.microsoft.FusedConv <activation = "Clip"> (x, w, b)"#,
  ])
  func keepsWhatItCannotRead(_ line: String) throws {
    let model = try Model(
      parsing: """
        <ir_version: 8, opset_import: ["" : 17, "com.microsoft" : 1]>
        g (float[1,2,3,3] x) => (float[1,2,3,3] y) <float[2,2,1,1] w = {1.0, 0.0, 0.0, 1.0}, float[2] b = {0.5, -0.5}> {
          \(line)
        }
        """)
    let adopted = model.adoptingContribFusedLayers()
    #expect(adopted.text(options: goldenTextOptions) == model.text(options: goldenTextOptions))
  }
}
