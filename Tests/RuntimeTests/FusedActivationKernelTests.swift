import Graph
import GraphTesting
import Testing

@testable import Runtime

/// A fused (`ai.rebirth`) layer computes what the layer followed by the activation node computes.
@Suite struct FusedActivationKernelTests {
  /// A layer as ONNX text: its op, attributes, input and weight declarations, output shape.
  struct Layer: CustomStringConvertible, Sendable {
    let op: String
    let attributes: [String]
    let inputs: String
    let weights: String
    let arguments: String
    let output: String
    var description: String { op + (attributes.isEmpty ? "" : "<\(attributes.joined(separator: ", "))>") }
  }

  static let layers: [Layer] = [
    Layer(
      op: "Conv", attributes: ["pads = [1, 1, 1, 1]"], inputs: "float[2,3,6,6] x",
      weights: "float[4,3,3,3] w = \(floatLiteral(108)), float[4] b = \(floatLiteral(4, seed: 3))",
      arguments: "x, w, b", output: "float[2,4,6,6] y"),
    Layer(
      op: "Conv", attributes: ["group = 3", "strides = [2, 2]", "pads = [1, 1, 1, 1]"], inputs: "float[1,3,7,7] x",
      weights: "float[3,1,3,3] w = \(floatLiteral(27))", arguments: "x, w", output: "float[1,3,4,4] y"),
    Layer(
      op: "ConvTranspose", attributes: ["strides = [2, 2]"], inputs: "float[1,3,4,4] x",
      weights: "float[3,2,3,3] w = \(floatLiteral(54)), float[2] b = {0.5, -0.5}", arguments: "x, w, b",
      output: "float[1,2,9,9] y"),
    Layer(
      op: "Gemm", attributes: ["transB = 1", "alpha = 0.5"], inputs: "float[5,8] x",
      weights: "float[6,8] w = \(floatLiteral(48)), float[6] b = \(floatLiteral(6, seed: 5))", arguments: "x, w, b",
      output: "float[5,6] y"),
    Layer(
      op: "MatMul", attributes: [], inputs: "float[2,3,8] x", weights: "float[8,5] w = \(floatLiteral(40))",
      arguments: "x, w", output: "float[2,3,5] y"),
  ]

  static let activations: [FusedActivation] = [
    .relu, .clip(min: -0.5, max: 1.5), .leakyRelu(alpha: 0.1), .sigmoid, .hardSigmoid(alpha: 0.3, beta: 0.4), .hardSwish,
    .tanh,
  ]

  static let header = "<ir_version: 8, opset_import: [\"\" : 17, \"ai.rebirth\" : 1]>"

  /// `y = Activation(Layer(…))` as two standard nodes.
  static func unfused(_ layer: Layer, _ activation: FusedActivation) -> String {
    var weights = layer.weights
    var actInputs = "c"
    var actAttributes = ""
    switch activation {
    case .clip(let lo, let hi):
      weights += ", float lo = {\(lo)}, float hi = {\(hi)}"
      actInputs += ", lo, hi"
    case .leakyRelu(let alpha): actAttributes = "<alpha = \(alpha)>"
    case .hardSigmoid(let alpha, let beta): actAttributes = "<alpha = \(alpha), beta = \(beta)>"
    default: break
    }
    return """
      \(header)
      g (\(layer.inputs)) => (\(layer.output)) <\(weights)> {
        c = \(layer.op)\(attributeList(layer.attributes)) (\(layer.arguments))
        y = \(activation.opType)\(actAttributes) (\(actInputs))
      }
      """
  }

  /// The same as one fused layer.
  static func fused(_ layer: Layer, _ activation: FusedActivation) -> String {
    var attributes = layer.attributes + ["activation = \"\(activation.opType)\""]
    if !activation.parameters.isEmpty {
      attributes.append("activation_params = [\(activation.parameters.map { "\($0)" }.joined(separator: ", "))]")
    }
    return """
      \(header)
      g (\(layer.inputs)) => (\(layer.output)) <\(layer.weights)> {
        y = ai.rebirth.\(layer.op)\(attributeList(attributes)) (\(layer.arguments))
      }
      """
  }

  static func attributeList(_ attributes: [String]) -> String {
    attributes.isEmpty ? "" : " <\(attributes.joined(separator: ", "))>"
  }

  @Test(arguments: layers, activations)
  func fusedEqualsUnfused(layer: Layer, activation: FusedActivation) throws {
    let reference = try Model(parsing: Self.unfused(layer, activation))
    let model = try Model(parsing: Self.fused(layer, activation))
    let feeds = try seededInputs(for: reference)
    for threads in [1, 2] {
      let options = SessionOptions(threadCount: threads)
      let expected = try Session(model: reference, options: options).run(feeds)["y"]!
      let actual = try Session(model: model, options: options).run(feeds)["y"]!
      #expect(actual.shape == expected.shape)
      let (a, e) = (actual.scalars(as: Float.self), expected.scalars(as: Float.self))
      let error = zip(a, e).map { abs($0 - $1) }.max() ?? 0
      #expect(error == 0, "\(layer) + \(activation.opType), \(threads) threads: max difference \(error)")
    }
  }

  @Test func fusedLayerWithoutActivationIsAnError() throws {
    let model = try Model(
      parsing: """
        \(Self.header)
        g (float[1,2] x) => (float[1,2] y) <float[2,2] w = {1.0, 0.0, 0.0, 1.0}> {
          y = ai.rebirth.MatMul (x, w)
        }
        """)
    #expect(throws: RuntimeError.self) { try Session(model: model, options: SessionOptions(threadCount: 1)) }
  }

  @Test func unknownActivationIsAnError() throws {
    let model = try Model(
      parsing: """
        \(Self.header)
        g (float[1,2] x) => (float[1,2] y) <float[2,2] w = {1.0, 0.0, 0.0, 1.0}> {
          y = ai.rebirth.MatMul <activation = "Elu"> (x, w)
        }
        """)
    #expect(throws: RuntimeError.self) { try Session(model: model, options: SessionOptions(threadCount: 1)) }
  }
}

extension FusedActivation: CustomStringConvertible {
  public var description: String { opType + (parameters.isEmpty ? "" : "\(parameters)") }
}
