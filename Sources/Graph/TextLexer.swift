/// Why a text could not be read as a graph or model: where (1-based line and column, columns
/// counted in Unicode scalars) and what was expected.
public struct TextParseError: Error, Equatable, CustomStringConvertible {
  public var line: Int
  public var column: Int
  public var message: String

  public init(line: Int, column: Int, message: String) {
    self.line = line
    self.column = column
    self.message = message
  }

  public var description: String { "\(line):\(column): \(message)" }
}

/// The tokens of ONNX's textual syntax, read on demand from UTF-8 bytes. Whitespace and `#`
/// comments (to the end of the line) separate tokens.
struct TextLexer {
  let bytes: [UInt8]
  /// The offset of the next unread byte.
  var offset = 0

  init(_ text: String) { bytes = Array(text.utf8) }

  // MARK: Positions and errors

  /// The line and column of `offset`.
  func position(of offset: Int) -> (line: Int, column: Int) {
    var line = 1
    var column = 1
    for b in bytes[0..<min(offset, bytes.count)] {
      if b == 0x0A {
        line += 1
        column = 1
      } else if b & 0xC0 != 0x80 {
        column += 1
      }
    }
    return (line, column)
  }

  func error(_ message: String, at offset: Int? = nil) -> TextParseError {
    let (line, column) = position(of: offset ?? self.offset)
    return TextParseError(line: line, column: column, message: message)
  }

  /// "expected X, found Y" at the next token.
  mutating func expected(_ what: String) -> TextParseError {
    skipTrivia()
    return error("expected \(what), found \(describeNext())")
  }

  /// The next token, described for an error message.
  func describeNext() -> String {
    guard offset < bytes.count else { return "end of input" }
    let b = bytes[offset]
    if TextSpelling.isIdentifierStart(b) {
      var end = offset
      while end < bytes.count, TextSpelling.isIdentifierPart(bytes[end]), end - offset < 40 { end += 1 }
      return "'\(String(decoding: bytes[offset..<end], as: UTF8.self))'"
    }
    if b == 0x22 { return "a string" }
    if TextSpelling.isDigit(b) { return "a number" }
    let length = max(1, TextSpelling.utf8SequenceLength(bytes, at: offset))
    return "'\(String(decoding: bytes[offset..<min(bytes.count, offset + length)], as: UTF8.self))'"
  }

  // MARK: Characters

  mutating func skipTrivia() {
    while offset < bytes.count {
      switch bytes[offset] {
      case 0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D: offset += 1
      case 0x23:  // '#': a comment to the end of the line
        while offset < bytes.count, bytes[offset] != 0x0A { offset += 1 }
      default: return
      }
    }
  }

  /// The next byte after trivia, or nil at the end.
  mutating func peek() -> UInt8? {
    skipTrivia()
    return offset < bytes.count ? bytes[offset] : nil
  }

  mutating func atEnd() -> Bool { peek() == nil }

  /// Consumes `c` if it comes next.
  mutating func match(_ c: Character) -> Bool {
    guard let b = peek(), let a = c.asciiValue, b == a else { return false }
    offset += 1
    return true
  }

  /// Consumes `c`, which must come next; `context` says what it belongs to.
  mutating func expect(_ c: Character, _ context: String = "") throws(TextParseError) {
    guard match(c) else { throw expected("'\(c)'" + (context.isEmpty ? "" : " " + context)) }
  }

  /// Consumes `c` only if it is the very next byte (no trivia before it): the `>` of `=>`.
  mutating func matchImmediately(_ c: Character) -> Bool {
    guard offset < bytes.count, let a = c.asciiValue, bytes[offset] == a else { return false }
    offset += 1
    return true
  }

  // MARK: Identifiers, names and strings

  /// The identifier that comes next, without consuming it.
  mutating func peekIdentifier() -> String? {
    let saved = offset
    defer { offset = saved }
    return identifier()
  }

  /// Consumes an identifier if one comes next.
  mutating func identifier() -> String? {
    skipTrivia()
    guard offset < bytes.count, TextSpelling.isIdentifierStart(bytes[offset]) else { return nil }
    let start = offset
    while offset < bytes.count, TextSpelling.isIdentifierPart(bytes[offset]) { offset += 1 }
    return String(decoding: bytes[start..<offset], as: UTF8.self)
  }

  /// A string literal: `\xHH` is a byte, a backslash before any other character stands for that
  /// character.
  mutating func string() throws(TextParseError) -> [UInt8] {
    skipTrivia()
    let start = offset
    guard offset < bytes.count, bytes[offset] == 0x22 else { throw expected("a string") }
    offset += 1
    var out: [UInt8] = []
    while offset < bytes.count, bytes[offset] != 0x22 {
      if bytes[offset] == 0x5C {
        offset += 1
        guard offset < bytes.count else { break }
        if bytes[offset] == 0x78, offset + 2 < bytes.count, let hi = hexValue(bytes[offset + 1]),
          let lo = hexValue(bytes[offset + 2])
        {
          out.append(hi << 4 | lo)
          offset += 3
          continue
        }
      }
      out.append(bytes[offset])
      offset += 1
    }
    guard offset < bytes.count else { throw error("unterminated string", at: start) }
    offset += 1
    return out
  }

  private func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case 0x30...0x39: return b - 0x30
    case 0x61...0x66: return b - 0x61 + 10
    case 0x41...0x46: return b - 0x41 + 10
    default: return nil
    }
  }

  /// A name: an identifier or a string literal.
  mutating func name(_ what: String) throws(TextParseError) -> String {
    if peek() == 0x22 { return String(decoding: try string(), as: UTF8.self) }
    guard let id = identifier() else { throw expected(what) }
    return id
  }

  /// A name if one comes next.
  mutating func optionalName() throws(TextParseError) -> String? {
    if peek() == 0x22 { return String(decoding: try string(), as: UTF8.self) }
    return identifier()
  }

  // MARK: Numbers

  /// Whether a number (or `nan`/`inf`/`infinity`, maybe negated) comes next.
  mutating func atNumber() -> Bool {
    guard let b = peek() else { return false }
    if TextSpelling.isDigit(b) || b == 0x2D { return true }
    if let id = peekIdentifier() { return TextSpelling.isFloatWord(id) }
    return false
  }

  /// A number, as ONNX's parser reads one: `-`? digits, at most one `.`, an optional exponent
  /// (which makes it a float); or `nan`, `inf`, `infinity` in any case, maybe negated.
  mutating func number() throws(TextParseError) -> Literal {
    skipTrivia()
    let start = offset
    var text = ""
    if match("-") { text = "-" }
    skipTrivia()
    if let id = peekIdentifier(), TextSpelling.isFloatWord(id) {
      _ = identifier()
      return .float(text + id)
    }
    guard offset < bytes.count, TextSpelling.isDigit(bytes[offset]) else {
      offset = start
      throw expected("a number")
    }
    let digitsStart = offset
    var isFloat = false
    while offset < bytes.count, TextSpelling.isDigit(bytes[offset]) || (bytes[offset] == 0x2E && !isFloat) {
      if bytes[offset] == 0x2E { isFloat = true }
      offset += 1
    }
    if offset < bytes.count, bytes[offset] == 0x65 || bytes[offset] == 0x45 {
      isFloat = true
      offset += 1
      if offset < bytes.count, bytes[offset] == 0x2B || bytes[offset] == 0x2D { offset += 1 }
      let exponentStart = offset
      while offset < bytes.count, TextSpelling.isDigit(bytes[offset]) { offset += 1 }
      guard offset > exponentStart else { throw error("expected the digits of an exponent") }
    }
    text += String(decoding: bytes[digitsStart..<offset], as: UTF8.self)
    return isFloat ? .float(text) : .integer(text)
  }

  /// An integer literal that fits in Int64.
  mutating func integer(_ what: String) throws(TextParseError) -> Int64 {
    skipTrivia()
    let start = offset
    guard atNumber() else { throw expected(what) }
    guard case .integer(let text) = try number() else { throw error("expected \(what), found a float", at: start) }
    guard let v = Int64(text) else { throw error("\(text) does not fit in 64 bits", at: start) }
    return v
  }
}

/// A literal as written: an integer or float (its text, sign included) or a string.
enum Literal: Equatable {
  case integer(String)
  case float(String)
  case string([UInt8])

  /// The value as a float, rounded once from the text; nil for strings and for literals whose
  /// magnitude overflows (as ONNX's parser refuses them).
  var float: Float? {
    switch self {
    case .integer(let text), .float(let text):
      if let special = Literal.special(text, Float.nan, Float.infinity) { return special }
      guard let v = Float(text), v.isFinite else { return nil }
      return v
    case .string: return nil
    }
  }

  var double: Double? {
    switch self {
    case .integer(let text), .float(let text):
      if let special = Literal.special(text, Double.nan, Double.infinity) { return special }
      guard let v = Double(text), v.isFinite else { return nil }
      return v
    case .string: return nil
    }
  }

  /// `nan`, `inf`, `infinity` in any case, optionally negated.
  private static func special<F: FloatingPoint>(_ text: String, _ nan: F, _ infinity: F) -> F? {
    let negative = text.hasPrefix("-")
    let word = (negative ? String(text.dropFirst()) : text).lowercased()
    let value: F
    switch word {
    case "nan": value = nan
    case "inf", "infinity": value = infinity
    default: return nil
    }
    return negative ? -value : value
  }
}
