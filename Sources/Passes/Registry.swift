import Graph

/// A graph rewrite the pipeline can run.
///
/// A pass declares a stable kebab-case name, a one-line summary, whether it is exact (outputs equal
/// up to float rounding) and whether the default pipeline runs it.
public protocol Pass: Sendable {
  static var name: String { get }
  static var summary: String { get }
  static var isExact: Bool { get }
  static var isDefault: Bool { get }
  init()
  /// Rewrites `model`; returns how many changes it made.
  mutating func run(_ model: inout Model) throws -> Int
}

/// A pass list the user asked for that names no pass.
public struct PassSelectionError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public var description: String { message }
}

/// Every pass rebirth has, in pipeline order.
public enum PassRegistry {
  /// The registration list. Passes land here with their own issues; the order is the pipeline's.
  nonisolated(unsafe) public static let all: [any Pass.Type] = []

  public static func named(_ name: String) -> (any Pass.Type)? {
    all.first { $0.name == name }
  }

  /// The passes the default pipeline runs.
  public static var defaults: [any Pass.Type] { all.filter { $0.isDefault } }

  /// Parses a comma-separated `--passes` list; `none` is the empty list.
  public static func select(_ list: String) throws(PassSelectionError) -> [any Pass.Type] {
    let names = list.split(separator: ",").map { $0.trimmingCharacters(in: " ") }.filter { !$0.isEmpty }
    if names == ["none"] { return [] }
    guard !names.isEmpty else { throw PassSelectionError(message: "--passes needs a pass name or 'none'") }
    var passes: [any Pass.Type] = []
    for name in names {
      guard let pass = named(name) else {
        var message = "unknown pass '\(name)'"
        if let near = nearestName(to: name) { message += "; did you mean '\(near)'?" }
        message += " ('rebirth passes' lists them)"
        throw PassSelectionError(message: message)
      }
      passes.append(pass)
    }
    return passes
  }

  /// The registered name closest to `name` by edit distance, if reasonably close.
  static func nearestName(to name: String) -> String? {
    let scored = (all.map { $0.name } + ["none"]).map { ($0, editDistance($0, name)) }
    guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, name.count / 3) else { return nil }
    return best.0
  }
}

/// Levenshtein distance between two strings.
func editDistance(_ a: String, _ b: String) -> Int {
  let a = Array(a), b = Array(b)
  var previous = Array(0...b.count)
  for i in 1...max(a.count, 1) where !a.isEmpty {
    var current = [i] + Array(repeating: 0, count: b.count)
    for j in 1...max(b.count, 1) where !b.isEmpty {
      current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return a.isEmpty ? b.count : previous[b.count]
}

extension Substring {
  fileprivate func trimmingCharacters(in set: Character) -> String {
    String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
  }
}
