import Foundation
import Testing

/// Compares `text` with the committed snapshot `Tests/<suite folder>/snapshots/<name>`.
///
/// With `REBIRTH_RECORD_SNAPSHOTS=1` in the environment it writes the snapshot instead, and the
/// test fails (a recording run must never pass), so new snapshots are reviewed before they count.
/// A missing snapshot is a failure, with the text to review.
public func assertSnapshot(
  _ text: String, named name: String, filePath: String = #filePath, sourceLocation: SourceLocation = #_sourceLocation
) {
  let folder = URL(fileURLWithPath: filePath).deletingLastPathComponent().appendingPathComponent("snapshots")
  let file = folder.appendingPathComponent(name)
  if ProcessInfo.processInfo.environment["REBIRTH_RECORD_SNAPSHOTS"] == "1" {
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try? text.write(to: file, atomically: true, encoding: .utf8)
    Issue.record("recorded snapshot \(file.path); review it and run again without REBIRTH_RECORD_SNAPSHOTS", sourceLocation: sourceLocation)
    return
  }
  guard let expected = try? String(contentsOf: file, encoding: .utf8) else {
    Issue.record("no snapshot \(file.path) (record it with REBIRTH_RECORD_SNAPSHOTS=1):\n\(text)", sourceLocation: sourceLocation)
    return
  }
  guard expected != text else { return }
  let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
  let b = text.split(separator: "\n", omittingEmptySubsequences: false)
  let first = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
  Issue.record(
    """
    snapshot \(name) differs at line \(first + 1):
      expected: \(first < a.count ? String(a[first]) : "<end>")
      actual:   \(first < b.count ? String(b[first]) : "<end>")
    actual text:
    \(text)
    """, sourceLocation: sourceLocation)
}

/// Replaces the timings in a report (`12.3 ms`) with `<t> ms`, so reports can be snapshots.
public func maskingTimings(_ text: String) -> String {
  text.replacingOccurrences(of: #"\d+\.\d+ ms"#, with: "<t> ms", options: .regularExpression)
}
