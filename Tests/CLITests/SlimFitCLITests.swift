import Foundation
import Graph
import GraphTesting
import Runtime
import Testing

/// `rebirth optimize --preset slim --calibration data.npz --max-error E` end to end: the error
/// budget the report states is the one `rebirth verify` measures on the held-out samples.
@Suite struct SlimFitCLITests {
  /// Deterministic values, roughly standard normal (sums of uniforms), for `count` samples of
  /// GoogLeNet's stem input: [count, 1, 3, 64, 64], one sample per index of the leading axis.
  private func samples(_ count: Int, seed: UInt64) -> NDArray {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    func uniform() -> Float {
      state ^= state << 13
      state ^= state >> 7
      state ^= state << 17
      return Float(state >> 40) / Float(1 << 24)
    }
    let shape = [count, 1, 3, 64, 64]
    return NDArray((0..<shape.reduce(1, *)).map { _ in (0..<3).reduce(Float(0)) { s, _ in s + uniform() } * 2 - 3 }, shape: shape)
  }

  private func json(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
  }

  /// 8 samples: the last 2 are held out (a quarter). The stem's pool merges cost about 0.3 and are
  /// skipped at 0.1; its LRN merges are kept. Every kept change is within the budget at the end,
  /// and the last one's recorded `output_error` equals the largest `max_rel_error` that
  /// `rebirth verify` prints for the written model on the held-out samples, one at a time.
  @Test func reportedErrorIsWhatVerifyMeasuresOnTheHeldOutSamples() throws {
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let data = samples(8, seed: 5)
    let archive = dir.appendingPathComponent("calibration.npz")
    try Data(try NumPyArchive.encode([("data", data)])).write(to: archive)
    let stem = TestEnvironment.fixture("googlenet_stem.onnx")
    let out = dir.appendingPathComponent("slim.onnx").path, report = dir.appendingPathComponent("report.json").path
    let optimized = try runRebirth([
      "optimize", stem, out, "--preset", "slim", "--calibration", archive.path, "--max-error", "0.1", "--threads", "1",
      "--report", report,
    ])
    #expect(optimized.status == 0, "stderr: \(optimized.stderr)")
    #expect(optimized.stdout.contains("calibration.npz (8 samples)"), "\(optimized.stdout)")

    let run = try #require(try json(String(contentsOfFile: report, encoding: .utf8))["run"] as? [String: Any])
    let changes = try #require(run["changes"] as? [[String: Any]]).filter { $0["pass"] as? String == "stream-slim-fit" }
    let skipped = try #require(run["skipped"] as? [[String: Any]]).filter { $0["pass"] as? String == "stream-slim-fit" }
    #expect(changes.count >= 1)
    #expect(skipped.contains { ($0["description"] as? String ?? "").contains("over the budget 1e-1") })
    let recorded = try #require((changes.last?["metrics"] as? [String: Any])?["output_error"] as? Double)
    #expect(recorded > 0 && recorded <= 0.1)

    let sample = 64 * 64 * 3
    let values = data.scalars(as: Float.self)
    var worst = 0.0
    for index in 6..<8 {
      let input = dir.appendingPathComponent("heldout\(index).npz")
      let one = NDArray(Array(values[(index * sample)..<((index + 1) * sample)]), shape: [1, 3, 64, 64])
      try Data(try NumPyArchive.encode([("data", one)])).write(to: input)
      let verified = try runRebirth([
        "verify", stem, out, "--inputs", input.path, "--threads", "1", "--tolerance", "10", "--format", "json",
      ])
      #expect(verified.status == 0, "stderr: \(verified.stderr)")
      let outputs = try #require(try json(verified.stdout)["outputs"] as? [[String: Any]])
      for output in outputs { worst = max(worst, try #require(output["max_rel_error"] as? Double)) }
    }
    #expect(abs(worst - recorded) <= 1e-6 * max(1e-3, recorded), "verify \(worst), reported \(recorded)")
  }
}
