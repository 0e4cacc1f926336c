using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Autograd.Nn.Serialization;

/// <summary>The tensors and metadata read from a safetensors file by <see cref="SafeTensors.Read(string)"/>.</summary>
public sealed class SafeTensorsContent
{
    internal SafeTensorsContent(
        IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string> storedDTypes,
        IReadOnlyDictionary<string, string> metadata)
    {
        Tensors = tensors;
        StoredDTypes = storedDTypes;
        Metadata = metadata;
    }

    /// <summary>The tensors by name, in the order of their data in the file. Each is a new leaf that does not require grad.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>
    /// The dtype code each tensor has in the file (<c>F64</c>, <c>F32</c>, <c>I64</c>, <c>F16</c>, <c>BF16</c>); it
    /// differs from the tensor's <see cref="DType"/> only for F16 and BF16, which are widened to float32.
    /// </summary>
    public IReadOnlyDictionary<string, string> StoredDTypes { get; }

    /// <summary>The <c>__metadata__</c> string map of the header; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
}

/// <summary>
/// Reads and writes the safetensors format (https://github.com/huggingface/safetensors), which PyTorch and the
/// Hugging Face libraries use for weights: an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping
/// each tensor name to <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> (offsets relative to the data section,
/// end exclusive) plus an optional <c>"__metadata__"</c> string map, padded with spaces to a multiple of 8 bytes, then
/// the raw little-endian data.
/// </summary>
/// <remarks>
/// <para>
/// Writing: the header is compact JSON, <c>__metadata__</c> first (keys sorted ordinally), then the tensors in the order
/// of their data. The data is laid out in the caller's order, except that 8-byte dtypes (F64, I64) come before 4-byte
/// ones (F32) — a stable reordering that keeps every tensor aligned to its element size (the reference implementation
/// also orders by dtype for alignment, then by name). The same input gives the same bytes.
/// </para>
/// <para>
/// Reading validates the whole header before any data is read, as the reference implementation does: the header length
/// fits the file (and at most 100 MB); the header is valid UTF-8 and a JSON object starting with <c>{</c>; names are unique,
/// and so are the keys of each entry (a second <c>"dtype"</c>, <c>"shape"</c> or <c>"data_offsets"</c> is an error, not an override);
/// every entry has a known dtype, a shape of non-negative integers and two offsets with begin ≤ end, and
/// shape product × element size = end − begin; the offsets are in bounds and the tensors cover the data section
/// exactly (no overlap, no hole, no trailing bytes). A file that breaks a rule raises
/// <see cref="InvalidDataException"/> naming the file and the offending tensor. Nothing is allocated on the header's word
/// alone: when the length is known (a file, a seekable stream) every size the header claims is checked against it
/// first; when it is not (a non-seekable stream), buffers start small and double only as bytes arrive, so a truncated
/// stream fails with "truncated: …" after allocating a small multiple of the bytes it really held.
/// </para>
/// <para>
/// Supported dtypes are those of Autograd: F64, F32 and I64, loaded as float64, float32 and int64. F16 and BF16
/// tensors are widened to float32 on load (exactly: every half and bfloat16 value is a float32 value). Any other
/// dtype (I32, U8, BOOL, F8_*, …) is rejected with a message naming the tensor and its dtype.
/// </para>
/// </remarks>
public static class SafeTensors
{
    /// <summary>The largest header accepted when reading, as in the reference implementation (100 MB).</summary>
    public const long MaxHeaderLength = 100_000_000;

    private const string MetadataKey = "__metadata__";
    private const string StreamSource = "<stream>";

    /// <summary>The most bytes moved per read or write call; a byte span cannot exceed 2 GB.</summary>
    private const int ChunkBytes = 1 << 26;

    /// <summary>Element sizes in bytes of the byte-sized safetensors dtypes.</summary>
    private static readonly Dictionary<string, int> ElementSizes = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 1,
        ["U8"] = 1,
        ["I8"] = 1,
        ["F8_E5M2"] = 1,
        ["F8_E4M3"] = 1,
        ["F8_E8M0"] = 1,
        ["I16"] = 2,
        ["U16"] = 2,
        ["F16"] = 2,
        ["BF16"] = 2,
        ["I32"] = 4,
        ["U32"] = 4,
        ["F32"] = 4,
        ["I64"] = 8,
        ["U64"] = 8,
        ["F64"] = 8,
        ["C64"] = 8,
    };

    /// <summary>The digits of the GUIDs in temporary file names.</summary>
    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    /// <summary>
    /// Writes <paramref name="tensors"/> (and <paramref name="metadata"/>, if given) to <paramref name="path"/>
    /// atomically: the file is written to a temporary file in the same folder, flushed, then moved over the target, so
    /// a reader never sees a half-written file and a failed save leaves the previous file intact. A successful save also
    /// removes the temporary files of the same target left behind by saves that were killed (named like its own, not
    /// written for a minute and not held open by anyone).
    /// </summary>
    /// <exception cref="ArgumentException">A name is null, duplicated or <c>__metadata__</c>, a tensor is null, or a metadata value is null.</exception>
    /// <exception cref="IOException">The file cannot be written (for instance, the folder does not exist).</exception>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var plan = Plan(tensors, metadata);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"SafeTensors.Save: '{path}' has no folder.", nameof(path));
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                WritePlan(fs, plan);
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }

        DeleteOrphans(dir, Path.GetFileName(full));
    }

    /// <summary>
    /// Deletes <c>.{fileName}.{32 hex digits}.tmp</c> files in <paramref name="dir"/> that a killed save left behind: only
    /// those not written for a minute that can be opened exclusively (a save in progress holds its file open).
    /// </summary>
    private static void DeleteOrphans(string dir, string fileName)
    {
        var prefix = "." + fileName + ".";
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateFiles(dir, ".*.tmp");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }

        foreach (var path in candidates)
        {
            var name = Path.GetFileName(path);
            if (!name.StartsWith(prefix, StringComparison.Ordinal) || name.Length != prefix.Length + 32 + 4 ||
                name.AsSpan(prefix.Length, 32).ContainsAnyExcept(HexDigits) || !name.EndsWith(".tmp", StringComparison.Ordinal))
            {
                continue;
            }

            try
            {
                if (DateTime.UtcNow - File.GetLastWriteTimeUtc(path) < TimeSpan.FromMinutes(1))
                {
                    continue;
                }

                using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                {
                }

                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // In use or already gone: leave it.
            }
        }
    }

    /// <summary>Writes <paramref name="tensors"/> (and <paramref name="metadata"/>, if given) to <paramref name="stream"/> at its current position.</summary>
    /// <exception cref="ArgumentException">A name is null, duplicated or <c>__metadata__</c>, a tensor is null, or a metadata value is null.</exception>
    public static void Save(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        WritePlan(stream, Plan(tensors, metadata));
    }

    /// <summary>Reads every tensor of the safetensors file at <paramref name="path"/>, by name.</summary>
    /// <exception cref="InvalidDataException">The file is malformed or holds a dtype Autograd does not support; the message names the file and the tensor.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static IReadOnlyDictionary<string, Tensor> Load(string path) => Read(path).Tensors;

    /// <summary>Reads every tensor of a safetensors file from <paramref name="stream"/> (from its current position to its end), by name.</summary>
    /// <exception cref="InvalidDataException">The data is malformed, truncated or holds a dtype Autograd does not support.</exception>
    /// <exception cref="IOException">The stream cannot be read.</exception>
    public static IReadOnlyDictionary<string, Tensor> Load(Stream stream) => Read(stream).Tensors;

    /// <summary>Reads the tensors, their stored dtypes and the metadata of the safetensors file at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file is malformed or holds a dtype Autograd does not support; the message names the file and the tensor.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static SafeTensorsContent Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return ReadCore(fs, path);
    }

    /// <summary>
    /// Reads the tensors, their stored dtypes and the metadata of a safetensors file from <paramref name="stream"/>. The
    /// file runs from the stream's current position to its end: bytes after the last tensor are an error, as in a file.
    /// </summary>
    /// <exception cref="InvalidDataException">The data is malformed, truncated or holds a dtype Autograd does not support; no other exception is raised for bad bytes.</exception>
    /// <exception cref="IOException">The stream cannot be read.</exception>
    public static SafeTensorsContent Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return ReadCore(stream, StreamSource);
    }

    /// <summary>The safetensors dtype code of an Autograd dtype: F64, F32 or I64.</summary>
    public static string DTypeCode(DType dtype) => dtype switch
    {
        DType.Float64 => "F64",
        DType.Float32 => "F32",
        DType.Int64 => "I64",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    internal static SafeTensorsContent ReadCore(Stream stream, string source)
    {
        var entries = ReadHeader(stream, source, out var metadata, out var dataLength);
        var tensors = new Dictionary<string, Tensor>(entries.Count, StringComparer.Ordinal);
        var stored = new Dictionary<string, string>(entries.Count, StringComparer.Ordinal);
        foreach (var e in entries)
        {
            tensors.Add(e.Name, dataLength is null ? ReadTensorGrowing(stream, source, e) : ReadTensor(stream, source, e));
            stored.Add(e.Name, e.Code);
        }

        // A stream of unknown length: the data must end exactly where the last tensor does.
        if (dataLength is null && stream.ReadByte() != -1)
        {
            var end = entries.Count == 0 ? 0 : entries[^1].End;
            throw Invalid(source, $"the data section has bytes after the last tensor (which ends at byte {end}); the tensors must cover it exactly.");
        }

        return new SafeTensorsContent(tensors, stored, metadata);
    }

    private sealed record Entry(string Name, string Code, int[] Shape, long ElementCount, long Begin, long End);

    private sealed record WritePlanData(byte[] Header, List<KeyValuePair<string, Tensor>> Tensors);

    // ---- writing -------------------------------------------------------------------------------------------------

    private static WritePlanData Plan(IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var list = new List<KeyValuePair<string, Tensor>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            if (name is null)
            {
                throw new ArgumentException("SafeTensors.Save: a tensor name is null.", nameof(tensors));
            }

            if (name == MetadataKey)
            {
                throw new ArgumentException($"SafeTensors.Save: '{MetadataKey}' is reserved for the metadata and cannot name a tensor.", nameof(tensors));
            }

            if (tensor is null)
            {
                throw new ArgumentException($"SafeTensors.Save: tensor '{name}' is null.", nameof(tensors));
            }

            if (!seen.Add(name))
            {
                throw new ArgumentException($"SafeTensors.Save: the name '{name}' appears twice.", nameof(tensors));
            }

            list.Add(new(name, tensor));
        }

        // 8-byte dtypes first (stable), so every tensor starts at a multiple of its element size.
        list = [.. list.OrderByDescending(p => p.Value.DType.ElementSize())];

        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            if (metadata is not null)
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    if (value is null)
                    {
                        throw new ArgumentException($"SafeTensors.Save: metadata '{key}' has a null value.", nameof(metadata));
                    }

                    w.WriteString(key, value);
                }

                w.WriteEndObject();
            }

            long offset = 0;
            foreach (var (name, t) in list)
            {
                var bytes = (long)t.ElementCount * t.DType.ElementSize();
                w.WriteStartObject(name);
                w.WriteString("dtype", DTypeCode(t.DType));
                w.WriteStartArray("shape");
                foreach (var d in t.Shape.Dims)
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }

            w.WriteEndObject();
        }

        var json = buffer.WrittenSpan;
        var padded = new byte[(json.Length + 7) / 8 * 8];
        json.CopyTo(padded);
        padded.AsSpan(json.Length).Fill((byte)' ');
        return new WritePlanData(padded, list);
    }

    private static void WritePlan(Stream stream, WritePlanData plan)
    {
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)plan.Header.Length);
        stream.Write(prefix);
        stream.Write(plan.Header);
        foreach (var (_, t) in plan.Tensors)
        {
            switch (t.DType)
            {
                case DType.Float64: WriteLittleEndian(stream, MemoryMarshal.Cast<double, long>(t.AsSpan<double>())); break;
                case DType.Float32: WriteLittleEndian(stream, MemoryMarshal.Cast<float, int>(t.AsSpan<float>())); break;
                default: WriteLittleEndian(stream, t.AsSpan<long>()); break;
            }
        }
    }

    /// <summary>Writes elements little-endian, in chunks (a byte span cannot exceed 2 GB).</summary>
    private static void WriteLittleEndian<T>(Stream stream, ReadOnlySpan<T> data)
        where T : unmanaged
    {
        var chunkLength = ChunkBytes / Unsafe.SizeOf<T>();
        var swapped = BitConverter.IsLittleEndian ? null : new T[Math.Min(data.Length, chunkLength)];
        for (var i = 0; i < data.Length; i += chunkLength)
        {
            var chunk = data.Slice(i, Math.Min(chunkLength, data.Length - i));
            if (swapped is not null)
            {
                chunk.CopyTo(swapped);
                ReverseEndianness(swapped.AsSpan(0, chunk.Length));
                chunk = swapped.AsSpan(0, chunk.Length);
            }

            stream.Write(MemoryMarshal.AsBytes(chunk));
        }
    }

    /// <summary>Reads little-endian elements into <paramref name="data"/>, in chunks.</summary>
    private static void ReadLittleEndian<T>(Stream stream, Span<T> data)
        where T : unmanaged
    {
        var chunkLength = ChunkBytes / Unsafe.SizeOf<T>();
        for (var i = 0; i < data.Length; i += chunkLength)
        {
            var chunk = data.Slice(i, Math.Min(chunkLength, data.Length - i));
            stream.ReadExactly(MemoryMarshal.AsBytes(chunk));
            if (!BitConverter.IsLittleEndian)
            {
                ReverseEndianness(chunk);
            }
        }
    }

    private static void ReverseEndianness<T>(Span<T> data)
        where T : unmanaged
    {
        if (typeof(T) == typeof(long))
        {
            var s = MemoryMarshal.Cast<T, long>(data);
            BinaryPrimitives.ReverseEndianness(s, s);
        }
        else if (typeof(T) == typeof(int))
        {
            var s = MemoryMarshal.Cast<T, int>(data);
            BinaryPrimitives.ReverseEndianness(s, s);
        }
        else
        {
            var s = MemoryMarshal.Cast<T, ushort>(data);
            BinaryPrimitives.ReverseEndianness(s, s);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the original error matters more.
        }
        catch (UnauthorizedAccessException)
        {
            // Same.
        }
    }

    // ---- reading -------------------------------------------------------------------------------------------------

    /// <summary>Reads and validates the header; returns the entries sorted by offset. <paramref name="dataLength"/> is null for a stream of unknown length.</summary>
    private static List<Entry> ReadHeader(Stream stream, string source, out Dictionary<string, string> metadata, out long? dataLength)
    {
        long? remaining = null;
        if (stream.CanSeek)
        {
            remaining = Math.Max(0, stream.Length - stream.Position);
        }

        Span<byte> prefix = stackalloc byte[8];
        var got = stream.ReadAtLeast(prefix, 8, throwOnEndOfStream: false);
        if (got < 8)
        {
            throw Invalid(source, $"it is {got} bytes long, shorter than the 8-byte header length.");
        }

        var n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n == 0)
        {
            throw Invalid(source, "the header length is 0; the header must be a JSON object.");
        }

        if (remaining is { } r && n > (ulong)(r - 8))
        {
            throw Invalid(source, $"the header length {n} is larger than the file, which has {r - 8} bytes after the 8-byte length.");
        }

        if (n > MaxHeaderLength)
        {
            throw Invalid(source, $"the header length {n} exceeds the limit of {MaxHeaderLength} bytes.");
        }

        // The header grows as its bytes arrive, so a stream that ends early costs only what it really held.
        if (ReadGrowing<byte>(stream, (long)n, out var headerGot) is not { } header)
        {
            throw Invalid(source, $"truncated: the header length {n} is larger than the file, which ends {headerGot} bytes into the header.");
        }

        dataLength = remaining is { } rem ? rem - 8 - (long)n : null;
        var entries = ParseHeader(header, source, out metadata);
        ValidateLayout(entries, source, dataLength);
        return entries;
    }

    /// <summary>The size of the first buffer a read of unknown real length allocates; it doubles as the bytes arrive.</summary>
    private const int FirstReadBytes = 1 << 16;

    /// <summary>
    /// Reads <paramref name="count"/> elements, starting with a buffer of <see cref="FirstReadBytes"/> and doubling it
    /// (keeping what arrived) only once it is full, so that a header claiming more than the stream holds allocates at
    /// most a small multiple of the bytes that exist. Returns null when the stream ends first; <paramref name="got"/>
    /// is then the number of bytes that arrived. The elements are converted from little-endian.
    /// </summary>
    private static T[]? ReadGrowing<T>(Stream stream, long count, out long got)
        where T : unmanaged
    {
        var size = Unsafe.SizeOf<T>();
        var buffer = new T[(int)Math.Min(count, Math.Max(1, FirstReadBytes / size))];
        var filled = 0;
        got = 0;
        while (true)
        {
            var read = ReadAvailable(stream, MemoryMarshal.AsBytes(buffer.AsSpan(filled)));
            got += read;
            if (read < (long)(buffer.Length - filled) * size)
            {
                return null;
            }

            filled = buffer.Length;
            if (filled == count)
            {
                if (!BitConverter.IsLittleEndian && size > 1)
                {
                    ReverseEndianness(buffer.AsSpan());
                }

                return buffer;
            }

            Array.Resize(ref buffer, (int)Math.Min(count, (long)buffer.Length * 2));
        }
    }

    /// <summary>Fills <paramref name="bytes"/> from the stream in chunks; returns how many bytes arrived (fewer at the end of the stream).</summary>
    private static long ReadAvailable(Stream stream, Span<byte> bytes)
    {
        long total = 0;
        while (!bytes.IsEmpty)
        {
            var want = Math.Min(bytes.Length, ChunkBytes);
            var n = stream.ReadAtLeast(bytes[..want], want, throwOnEndOfStream: false);
            total += n;
            if (n < want)
            {
                break;
            }

            bytes = bytes[want..];
        }

        return total;
    }

    private static List<Entry> ParseHeader(byte[] header, string source, out Dictionary<string, string> metadata)
    {
        if (header[0] != (byte)'{')
        {
            throw Invalid(source, $"the header does not start with '{{' (first byte 0x{header[0]:X2}); it must be a JSON object.");
        }

        if (!System.Text.Unicode.Utf8.IsValid(header))
        {
            throw Invalid(source, "the header is not valid UTF-8.");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"safetensors '{source}': the header is not valid JSON: {ex.Message}", ex);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(source, $"the header is a JSON {root.ValueKind}, not an object.");
            }

            metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<Entry>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in root.EnumerateObject())
            {
                if (!names.Add(prop.Name))
                {
                    throw Invalid(source, $"the name '{prop.Name}' appears twice in the header.");
                }

                if (prop.Name == MetadataKey)
                {
                    metadata = ParseMetadata(prop.Value, source);
                    continue;
                }

                entries.Add(ParseEntry(prop.Name, prop.Value, source));
            }

            // Sort by offsets; a stable sort keeps header order among zero-length tensors at the same offset.
            return [.. entries.OrderBy(e => e.Begin).ThenBy(e => e.End)];
        }
    }

    private static Dictionary<string, string> ParseMetadata(JsonElement value, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(source, $"'{MetadataKey}' is a JSON {value.ValueKind}; it must be an object of strings.");
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
            {
                throw Invalid(source, $"metadata '{p.Name}' is a JSON {p.Value.ValueKind}; metadata values must be strings.");
            }

            if (!metadata.TryAdd(p.Name, p.Value.GetString()!))
            {
                throw Invalid(source, $"metadata '{p.Name}' appears twice.");
            }
        }

        return metadata;
    }

    private static Entry ParseEntry(string name, JsonElement value, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Invalid(source, $"tensor '{name}': the entry is a JSON {value.ValueKind}, not an object with dtype, shape and data_offsets.");
        }

        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in value.EnumerateObject())
        {
            if (!keys.Add(p.Name))
            {
                throw Invalid(source, $"tensor '{name}': the key \"{p.Name}\" appears twice in its entry; each key may appear once.");
            }
        }

        if (!value.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
        {
            throw Invalid(source, $"tensor '{name}': missing or non-string \"dtype\".");
        }

        var code = dtypeEl.GetString()!;
        if (!ElementSizes.TryGetValue(code, out var size))
        {
            throw Invalid(source, $"tensor '{name}': unknown dtype '{code}'; known safetensors dtypes are {string.Join(", ", ElementSizes.Keys)}.");
        }

        if (!value.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
        {
            throw Invalid(source, $"tensor '{name}': missing or non-array \"shape\".");
        }

        var shape = new int[shapeEl.GetArrayLength()];
        var count = (Int128)1;
        var i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
            {
                throw Invalid(source, $"tensor '{name}': shape entry {d.GetRawText()} is not a non-negative integer.");
            }

            if (dim > int.MaxValue)
            {
                throw Invalid(source, $"tensor '{name}': shape dimension {dim} is too large for Autograd (at most {int.MaxValue}).");
            }

            shape[i++] = (int)dim;
            count = Int128.Min(count * dim, (Int128)long.MaxValue + 1); // saturate: such a count fails the size check below
        }

        if (!value.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
        {
            throw Invalid(source, $"tensor '{name}': missing \"data_offsets\", or it is not an array of two integers.");
        }

        var begin = Offset(offEl[0], name, source);
        var end = Offset(offEl[1], name, source);
        if (end < begin)
        {
            throw Invalid(source, $"tensor '{name}': data_offsets [{begin}, {end}] end before they begin.");
        }

        if (count * size != end - begin)
        {
            throw Invalid(source,
                $"tensor '{name}': shape {Shape.Format(shape)} of {code} needs {count * size} bytes ({count} elements × {size}) but data_offsets [{begin}, {end}] span {end - begin}.");
        }

        return new Entry(name, code, shape, (long)count, begin, end);
    }

    private static long Offset(JsonElement el, string name, string source)
    {
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetInt64(out var v) || v < 0)
        {
            throw Invalid(source, $"tensor '{name}': data offset {el.GetRawText()} is not a non-negative integer (or is too large).");
        }

        return v;
    }

    /// <summary>The tensors must tile the data section: sorted by offset, each begins where the previous ends, the last ends at its end.</summary>
    private static void ValidateLayout(List<Entry> entries, string source, long? dataLength)
    {
        if (dataLength is { } len)
        {
            foreach (var e in entries)
            {
                if (e.End > len)
                {
                    throw Invalid(source, $"truncated: tensor '{e.Name}' needs bytes [{e.Begin}, {e.End}) of the data section but the file holds only {len}.");
                }
            }
        }

        long expected = 0;
        Entry? previous = null;
        foreach (var e in entries)
        {
            if (e.Begin < expected)
            {
                throw Invalid(source, $"tensor '{e.Name}' at data_offsets [{e.Begin}, {e.End}] overlaps tensor '{previous!.Name}' at [{previous.Begin}, {previous.End}].");
            }

            if (e.Begin > expected)
            {
                throw Invalid(source, $"the data bytes [{expected}, {e.Begin}) before tensor '{e.Name}' belong to no tensor; the tensors must cover the data section without holes.");
            }

            expected = e.End;
            previous = e;
        }

        if (dataLength is { } total && expected != total)
        {
            throw Invalid(source, $"the data section has {total} bytes but the tensors cover only {expected}; the bytes after byte {expected} belong to no tensor.");
        }

        foreach (var e in entries)
        {
            if (e.Code is not ("F64" or "F32" or "I64" or "F16" or "BF16"))
            {
                throw Invalid(source, $"tensor '{e.Name}' has dtype {e.Code}, which Autograd does not support; it loads F64, F32 and I64 (and widens F16 and BF16 to float32).");
            }

            if (e.ElementCount > Array.MaxLength)
            {
                throw Invalid(source, $"tensor '{e.Name}' has {e.ElementCount} elements, more than an Autograd tensor can hold ({Array.MaxLength}).");
            }
        }
    }

    private static Tensor ReadTensor(Stream stream, string source, Entry e)
    {
        var shape = new Shape(e.Shape);
        try
        {
            switch (e.Code)
            {
                case "F64":
                    {
                        var t = Tensor.Empty(shape, DType.Float64);
                        ReadLittleEndian(stream, MemoryMarshal.Cast<double, long>(t.Span<double>()));
                        return t;
                    }

                case "F32":
                    {
                        var t = Tensor.Empty(shape, DType.Float32);
                        ReadLittleEndian(stream, MemoryMarshal.Cast<float, int>(t.Span<float>()));
                        return t;
                    }

                case "I64":
                    {
                        var t = Tensor.Empty(shape, DType.Int64);
                        ReadLittleEndian(stream, t.Span<long>());
                        return t;
                    }

                default:
                    {
                        // F16 or BF16, widened exactly to float32.
                        var bits = new ushort[shape.ElementCount];
                        ReadLittleEndian(stream, bits.AsSpan());
                        return Widen(shape, bits, e.Code == "F16");
                    }
            }
        }
        catch (EndOfStreamException ex)
        {
            throw new InvalidDataException($"safetensors '{source}': truncated: the data ends inside tensor '{e.Name}' (data_offsets [{e.Begin}, {e.End}]).", ex);
        }
    }

    /// <summary>Reads a tensor from a stream of unknown length: the buffer grows as the bytes arrive, then is copied into the tensor.</summary>
    private static Tensor ReadTensorGrowing(Stream stream, string source, Entry e)
    {
        var shape = new Shape(e.Shape);
        long got;
        Tensor t;
        switch (e.Code)
        {
            case "F64":
                {
                    var data = ReadGrowing<long>(stream, e.ElementCount, out got);
                    if (data is null)
                    {
                        break;
                    }

                    t = Tensor.Empty(shape, DType.Float64);
                    data.AsSpan().CopyTo(MemoryMarshal.Cast<double, long>(t.Span<double>()));
                    return t;
                }

            case "F32":
                {
                    var data = ReadGrowing<int>(stream, e.ElementCount, out got);
                    if (data is null)
                    {
                        break;
                    }

                    t = Tensor.Empty(shape, DType.Float32);
                    data.AsSpan().CopyTo(MemoryMarshal.Cast<float, int>(t.Span<float>()));
                    return t;
                }

            case "I64":
                {
                    var data = ReadGrowing<long>(stream, e.ElementCount, out got);
                    if (data is null)
                    {
                        break;
                    }

                    t = Tensor.Empty(shape, DType.Int64);
                    data.AsSpan().CopyTo(t.Span<long>());
                    return t;
                }

            default:
                {
                    var bits = ReadGrowing<ushort>(stream, e.ElementCount, out got);
                    if (bits is null)
                    {
                        break;
                    }

                    return Widen(shape, bits, e.Code == "F16");
                }
        }

        throw Invalid(source, $"truncated: the data ends inside tensor '{e.Name}' (data_offsets [{e.Begin}, {e.End}]), {got} bytes into its {e.End - e.Begin}.");
    }

    /// <summary>F16 or BF16 bits widened exactly to float32.</summary>
    private static Tensor Widen(Shape shape, ushort[] bits, bool half)
    {
        var t = Tensor.Empty(shape, DType.Float32);
        var dst = t.Span<float>();
        for (var i = 0; i < bits.Length; i++)
        {
            dst[i] = half ? (float)BitConverter.UInt16BitsToHalf(bits[i]) : BitConverter.Int32BitsToSingle(bits[i] << 16);
        }

        return t;
    }

    private static InvalidDataException Invalid(string source, string detail) => new($"safetensors '{source}': {detail}");
}
