import Foundation
import Graph
import Testing

@testable import Runtime

@Suite struct LayerNormalizationTests {
  // Rows [1, 2, 3] (mean 2, variance 2/3) and [4, 6, 8] (mean 6, variance 8/3).
  let x = floats([1, 2, 3, 4, 6, 8], [2, 3])
  let s = Float(1.5).squareRoot()  // (x − mean)·inv of the last element of either row

  @Test func lastAxis() throws {
    let outputs = try run(
      "LayerNormalization", [x, floats([1, 2, 3], [3]), floats([0, 1, -1], [3])],
      attributes: [.float("epsilon", 0)], outputs: 3)
    expectClose(outputs[0], [-s, 1, 3 * s - 1, -s, 1, 3 * s - 1], shape: [2, 3])
    expectClose(outputs[1], [2, 6], shape: [2, 1])
    expectClose(outputs[2], [Float(1.5).squareRoot(), Float(0.375).squareRoot()], shape: [2, 1])
  }

  @Test func lastTwoAxes() throws {
    // One [2, 2] block: mean 2.5, variance 1.25; scale 1 … 4, no B.
    let outputs = try run(
      "LayerNormalization", [floats([1, 2, 3, 4], [1, 2, 2]), iota([2, 2], from: 1)],
      attributes: [.int("axis", -2), .float("epsilon", 0)], outputs: 3)
    let inv = 1 / Float(1.25).squareRoot()
    expectClose(outputs[0], [-1.5 * inv, -0.5 * inv * 2, 0.5 * inv * 3, 1.5 * inv * 4], shape: [1, 2, 2])
    expectClose(outputs[1], [2.5], shape: [1, 1, 1])
    expectClose(outputs[2], [inv], shape: [1, 1, 1])
    // axis 1 of rank 3 is the same pair of axes.
    let positive = try runFloat(
      "LayerNormalization", [floats([1, 2, 3, 4], [1, 2, 2]), iota([2, 2], from: 1)],
      attributes: [.int("axis", 1), .float("epsilon", 0)])
    expectClose(positive, outputs[0])
  }

  @Test func defaultEpsilonAndAxis() throws {
    let y = try runFloat("LayerNormalization", [floats([0, 2], [1, 2]), floats([1, 1], [2])])
    let inv = 1 / (1 + 1e-5 as Float).squareRoot()
    expectClose(y, [-inv, inv], shape: [1, 2])
  }

  @Test func scaleBroadcastAcrossRows() throws {
    // Scale [2, 1] varies by row (and broadcasts along the normalized axis); B is one scalar.
    let y = try runFloat(
      "LayerNormalization", [x, floats([1, 2], [2, 1]), floats([10], [1])], attributes: [.float("epsilon", 0)])
    expectClose(y, [10 - s, 10, 10 + s, 10 - 2 * s, 10, 10 + 2 * s], shape: [2, 3])
  }

  @Test func matchesTwoPassFormula() throws {
    let input = random([3, 4, 37], seed: 3)
    let scale = random([37], seed: 4)
    let bias = random([37], seed: 5)
    let y = try runFloat("LayerNormalization", [input, scale, bias])
    let (xs, ss, bs) = (input.scalars(as: Float.self), scale.scalars(as: Float.self), bias.scalars(as: Float.self))
    var expected: [Float] = []
    for row in 0..<12 {
      let values = xs[(row * 37)..<((row + 1) * 37)].map(Double.init)
      let mean = values.reduce(0, +) / 37
      let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 37
      for (i, v) in values.enumerated() {
        expected.append(Float((v - mean) / (variance + 1e-5).squareRoot()) * ss[i] + bs[i])
      }
    }
    expectClose(y, expected, shape: [3, 4, 37], tolerance: 1e-5)
  }

  @Test func errors() {
    expectRuntimeError(containing: "attribute 'axis': 2 is out of range for rank 2") {
      _ = try runFloat("LayerNormalization", [x, floats([1, 1, 1], [3])], attributes: [.int("axis", 2)])
    }
    expectRuntimeError(containing: "attribute 'stash_type': unsupported value 0") {
      _ = try runFloat("LayerNormalization", [x, floats([1, 1, 1], [3])], attributes: [.int("stash_type", 0)])
    }
    expectRuntimeError(containing: "Scale of shape [2] does not broadcast to [2, 3]") {
      _ = try runFloat("LayerNormalization", [x, floats([1, 1], [2])])
    }
  }
}

@Suite struct InstanceNormalizationTests {
  @Test func perImageAndChannel() throws {
    // Image 0: channel 0 [1, 3] (mean 2, variance 1), channel 1 [2, 6] (mean 4, variance 4);
    // image 1 doubles image 0, which standardizes to the same values.
    let x = floats([1, 3, 2, 6, 2, 6, 4, 12], [2, 2, 2])
    let y = try runFloat(
      "InstanceNormalization", [x, floats([1, 2], [2]), floats([0, 1], [2])], attributes: [.float("epsilon", 0)])
    expectClose(y, [-1, 1, -1, 3, -1, 1, -1, 3], shape: [2, 2, 2])
  }

  @Test func spatialPlanes() throws {
    // One 2×2 plane 0 … 3: mean 1.5, variance 1.25, default epsilon.
    let y = try runFloat("InstanceNormalization", [iota([1, 1, 2, 2]), floats([2], [1]), floats([0.5], [1])])
    let inv = 1 / (1.25 + 1e-5 as Float).squareRoot()
    expectClose(y, [-1.5, -0.5, 0.5, 1.5].map { $0 * inv * 2 + 0.5 }, shape: [1, 1, 2, 2])
  }

  @Test func parameterShapeIsChecked() {
    expectRuntimeError(containing: "input 2 has shape [3]; expected [2]") {
      _ = try runFloat("InstanceNormalization", [iota([1, 2, 2]), floats([1, 1], [2]), floats([0, 0, 0], [3])])
    }
  }
}
