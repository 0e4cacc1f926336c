using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;

namespace Autograd.Nn.Data;

/// <summary>The element type of an IDX file: the third byte of its magic number.</summary>
public enum IdxDataType : byte
{
    /// <summary>Unsigned byte (code 0x08), decoded as <see cref="byte"/>; MNIST images and labels.</summary>
    UByte = 0x08,

    /// <summary>Signed byte (code 0x09), decoded as <see cref="sbyte"/>.</summary>
    SByte = 0x09,

    /// <summary>Big-endian 16-bit integer (code 0x0B), decoded as <see cref="short"/>.</summary>
    Int16 = 0x0B,

    /// <summary>Big-endian 32-bit integer (code 0x0C), decoded as <see cref="int"/>.</summary>
    Int32 = 0x0C,

    /// <summary>Big-endian IEEE 32-bit float (code 0x0D), decoded as <see cref="float"/>.</summary>
    Float32 = 0x0D,

    /// <summary>Big-endian IEEE 64-bit float (code 0x0E), decoded as <see cref="double"/>.</summary>
    Float64 = 0x0E,
}

/// <summary>The decoded contents of one IDX file: its shape, element type and elements in row-major order.</summary>
public sealed class IdxArray
{
    internal IdxArray(string source, IdxDataType dataType, int[] shape, Array data)
    {
        Source = source;
        DataType = dataType;
        _shape = shape;
        Data = data;
    }

    private readonly int[] _shape;

    /// <summary>The file the array was read from (as given to <see cref="IdxFile.Read"/>).</summary>
    public string Source { get; }

    /// <summary>The element type named by the file's magic number.</summary>
    public IdxDataType DataType { get; }

    /// <summary>A copy of the dimension sizes from the header, outermost first.</summary>
    public int[] Shape => (int[])_shape.Clone();

    /// <summary>The number of dimensions (the fourth byte of the magic number).</summary>
    public int Rank => _shape.Length;

    /// <summary>The number of elements: the product of the sizes.</summary>
    public int ElementCount => Data.Length;

    /// <summary>
    /// The elements in row-major order, already converted to the machine's byte order: a <c>byte[]</c>,
    /// <c>sbyte[]</c>, <c>short[]</c>, <c>int[]</c>, <c>float[]</c> or <c>double[]</c> according to <see cref="DataType"/>.
    /// </summary>
    public Array Data { get; }

    /// <summary>The elements converted to <see cref="double"/> (exact for every IDX element type).</summary>
    public double[] ToDoubleArray()
    {
        var result = new double[Data.Length];
        switch (Data)
        {
            case byte[] a: for (var i = 0; i < a.Length; i++) { result[i] = a[i]; } break;
            case sbyte[] a: for (var i = 0; i < a.Length; i++) { result[i] = a[i]; } break;
            case short[] a: for (var i = 0; i < a.Length; i++) { result[i] = a[i]; } break;
            case int[] a: for (var i = 0; i < a.Length; i++) { result[i] = a[i]; } break;
            case float[] a: for (var i = 0; i < a.Length; i++) { result[i] = a[i]; } break;
            case double[] a: Array.Copy(a, result, a.Length); break;
        }

        return result;
    }

    /// <summary>
    /// A tensor of the header's shape holding the elements unscaled. The dtype defaults to float32 for
    /// <see cref="IdxDataType.Float32"/>, float64 for <see cref="IdxDataType.Float64"/> and int64 for the integer types.
    /// </summary>
    /// <param name="dtype">The dtype to convert to instead of the default.</param>
    /// <exception cref="InvalidDataException">Floating-point data is asked for as int64 and an element is not a whole number.</exception>
    public Tensor ToTensor(DType? dtype = null)
    {
        var target = dtype ?? DataType switch
        {
            IdxDataType.Float32 => DType.Float32,
            IdxDataType.Float64 => DType.Float64,
            _ => DType.Int64,
        };
        var values = ToDoubleArray();
        switch (target)
        {
            case DType.Float64:
                return Tensor.FromArray(values, _shape);
            case DType.Float32:
                var f = new float[values.Length];
                for (var i = 0; i < f.Length; i++)
                {
                    f[i] = (float)values[i];
                }

                return Tensor.FromArray(f, _shape);
            default:
                var l = new long[values.Length];
                for (var i = 0; i < l.Length; i++)
                {
                    if (values[i] != Math.Floor(values[i]) || double.IsInfinity(values[i]))
                    {
                        throw new InvalidDataException(
                            $"IDX file '{Source}': element {i} is {values[i]}, which is not a whole number and cannot be converted to int64.");
                    }

                    l[i] = (long)values[i];
                }

                return Tensor.FromArray(l, _shape);
        }
    }
}

/// <summary>
/// Reads IDX files, the format of MNIST and Fashion-MNIST: a big-endian magic number (two zero bytes, an element
/// type code, the number of dimensions), one big-endian int32 size per dimension, then the elements, big-endian,
/// row-major. Files may be gzip-compressed (recognised by the bytes 1F 8B) or raw.
/// </summary>
public static class IdxFile
{
    /// <summary>The magic number of an MNIST image file: unsigned bytes, three dimensions [n, rows, cols].</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>The magic number of an MNIST label file: unsigned bytes, one dimension [n].</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>
    /// Reads and validates an IDX file, gzip-compressed or raw.
    /// </summary>
    /// <param name="path">The file to read.</param>
    /// <returns>The shape, element type and elements.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// The magic number is not an IDX one (its first two bytes are not zero or the type code is unknown), the header
    /// is truncated, it has no dimensions, a size is negative or the sizes multiply past what an array holds, the
    /// gzip stream is corrupt, or the file holds fewer or more bytes than the header promises. The message names the
    /// file and, for a length mismatch, the expected and actual byte counts. This is the only exception malformed
    /// bytes raise.
    /// </exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <remarks>
    /// Nothing is allocated on the header's word alone: a raw file's length is checked against the size the header
    /// claims before the elements are allocated, and a gzip-compressed file is decompressed into a buffer that starts
    /// small and doubles only as bytes arrive, so a tiny file claiming gigabytes fails as truncated after allocating a
    /// small multiple of what it really holds. A size of zero means no elements whatever the other sizes, and the
    /// array keeps the header's shape.
    /// </remarks>
    public static IdxArray Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"IDX file '{path}' does not exist.", path);
        }

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var gzip = IsGzip(file);
        if (!gzip)
        {
            return ReadFrom(file, path, file.Length, compressed: false);
        }

        using var unzipped = new GZipStream(file, CompressionMode.Decompress);
        try
        {
            return ReadFrom(unzipped, path, knownLength: -1, compressed: true);
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith("IDX file '", StringComparison.Ordinal))
        {
            // Thrown by GZipStream itself: say which file it was.
            throw new InvalidDataException($"IDX file '{path}': the gzip stream is corrupt ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Reads an MNIST-style image file (magic 0x00000803: unsigned bytes [n, rows, cols]) as a floating-point tensor
    /// with every pixel divided by 255, so values lie in [0, 1].
    /// </summary>
    /// <param name="path">The file to read, gzip-compressed or raw.</param>
    /// <param name="flatten">True (the default) for shape [n, rows·cols], one flattened image per row; false for [n, rows, cols].</param>
    /// <param name="dtype">Float32 (the default) or Float64.</param>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not a floating-point type.</exception>
    /// <exception cref="InvalidDataException">
    /// The file is not a valid IDX file, or not unsigned bytes with three dimensions, or (with <paramref name="flatten"/>)
    /// it holds zero images whose rows·cols exceeds the largest tensor dimension.
    /// </exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static Tensor ReadImages(string path, bool flatten = true, DType dtype = DType.Float32)
    {
        if (!dtype.IsFloatingPoint())
        {
            throw new ArgumentException($"ReadImages: images are scaled to [0, 1] and need a floating-point dtype, not {dtype.Name()}.", nameof(dtype));
        }

        var idx = Read(path);
        RequireUByte(idx, 3, ImagesMagic, "image");
        var pixels = (byte[])idx.Data;
        var shape = idx.Shape;
        var rowLength = (long)shape[1] * shape[2];
        if (flatten && rowLength > int.MaxValue)
        {
            // Only possible with zero images: a non-empty file this large was refused by Read.
            throw new InvalidDataException(
                $"IDX file '{path}': images of {shape[1]} × {shape[2]} pixels flatten to rows of {rowLength}, more than a tensor dimension holds ({int.MaxValue}); read them with flatten: false.");
        }

        int[] outShape = flatten ? [shape[0], (int)rowLength] : shape;
        var images = Tensor.Empty(new Shape(outShape), dtype);
        if (dtype == DType.Float32)
        {
            var f = images.Span<float>();
            for (var i = 0; i < f.Length; i++)
            {
                f[i] = pixels[i] / 255f;
            }
        }
        else
        {
            var d = images.Span<double>();
            for (var i = 0; i < d.Length; i++)
            {
                d[i] = pixels[i] / 255.0;
            }
        }

        return images;
    }

    /// <summary>Reads an MNIST-style label file (magic 0x00000801: unsigned bytes [n]) as an int64 tensor of shape [n].</summary>
    /// <param name="path">The file to read, gzip-compressed or raw.</param>
    /// <exception cref="InvalidDataException">The file is not a valid IDX file, or not unsigned bytes with one dimension.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static Tensor ReadLabels(string path)
    {
        var idx = Read(path);
        RequireUByte(idx, 1, LabelsMagic, "label");
        var bytes = (byte[])idx.Data;
        var labels = new long[bytes.Length];
        for (var i = 0; i < labels.Length; i++)
        {
            labels[i] = bytes[i];
        }

        return Tensor.FromArray(labels, labels.Length);
    }

    /// <summary>The size in bytes of one element of the given type.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a defined <see cref="IdxDataType"/>.</exception>
    public static int ElementSize(IdxDataType type) => type switch
    {
        IdxDataType.UByte or IdxDataType.SByte => 1,
        IdxDataType.Int16 => 2,
        IdxDataType.Int32 or IdxDataType.Float32 => 4,
        IdxDataType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown IDX element type."),
    };

    private static void RequireUByte(IdxArray idx, int rank, int magic, string what)
    {
        if (idx.DataType != IdxDataType.UByte || idx.Rank != rank)
        {
            var found = ((int)idx.DataType << 8) | idx.Rank;
            throw new InvalidDataException(
                $"IDX file '{idx.Source}': an MNIST {what} file must have magic 0x{magic:X8} (unsigned bytes, {rank} dimension{(rank == 1 ? "" : "s")}), " +
                $"but this one has magic 0x{found:X8} ({idx.DataType}, {idx.Rank} dimension{(idx.Rank == 1 ? "" : "s")}, shape [{string.Join(", ", idx.Shape)}]).");
        }
    }

    private static bool IsGzip(FileStream file)
    {
        Span<byte> head = stackalloc byte[2];
        var n = file.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        file.Position = 0;
        return n == 2 && head[0] == 0x1F && head[1] == 0x8B;
    }

    private static IdxArray ReadFrom(Stream s, string path, long knownLength, bool compressed)
    {
        var what = compressed ? "the decompressed file holds" : "the file holds";

        Span<byte> magic = stackalloc byte[4];
        var got = s.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        if (got < 4)
        {
            throw new InvalidDataException(
                $"IDX file '{path}': truncated header: the 4-byte magic number is incomplete, {what} only {got} byte{(got == 1 ? "" : "s")}.");
        }

        if (magic[0] != 0 || magic[1] != 0)
        {
            throw new InvalidDataException(
                $"IDX file '{path}': bad magic number 0x{BinaryPrimitives.ReadUInt32BigEndian(magic):X8}; an IDX file starts with two zero bytes, " +
                "a type code and the number of dimensions (0x00000803 for MNIST images, 0x00000801 for labels).");
        }

        var type = (IdxDataType)magic[2];
        if (!Enum.IsDefined(type))
        {
            throw new InvalidDataException(
                $"IDX file '{path}': unknown element type code 0x{magic[2]:X2} in magic number 0x{BinaryPrimitives.ReadUInt32BigEndian(magic):X8}; " +
                "expected 0x08 (ubyte), 0x09 (sbyte), 0x0B (int16), 0x0C (int32), 0x0D (float32) or 0x0E (float64).");
        }

        int ndim = magic[3];
        if (ndim == 0)
        {
            throw new InvalidDataException($"IDX file '{path}': the magic number 0x{BinaryPrimitives.ReadUInt32BigEndian(magic):X8} declares 0 dimensions; at least 1 is needed.");
        }

        var headerBytes = 4 + (4 * ndim);
        var sizeBytes = new byte[4 * ndim];
        got = s.ReadAtLeast(sizeBytes, sizeBytes.Length, throwOnEndOfStream: false);
        if (got < sizeBytes.Length)
        {
            throw new InvalidDataException(
                $"IDX file '{path}': truncated header: {ndim} dimension sizes need {headerBytes} header bytes, but {what} only {4 + got}.");
        }

        var shape = new int[ndim];
        var elementSize = ElementSize(type);
        for (var d = 0; d < ndim; d++)
        {
            shape[d] = BinaryPrimitives.ReadInt32BigEndian(sizeBytes.AsSpan(4 * d));
            if (shape[d] < 0)
            {
                throw new InvalidDataException($"IDX file '{path}': dimension {d} has negative size {shape[d]} (sizes [{string.Join(", ", shape[..(d + 1)])}]).");
            }
        }

        // A zero size means no elements whatever the other sizes; otherwise the product, in long, must fit an array.
        long count = shape.Contains(0) ? 0 : 1;
        for (var d = 0; d < ndim && count > 0; d++)
        {
            count *= shape[d];
            if (count * elementSize > Array.MaxLength)
            {
                throw new InvalidDataException(
                    $"IDX file '{path}': the sizes [{string.Join(", ", shape)}] of {type} elements describe more data than an array can hold ({Array.MaxLength} bytes).");
            }
        }

        var dataBytes = count * elementSize;
        var expectedTotal = headerBytes + dataBytes;
        var promise = $"the header promises {expectedTotal} bytes ({headerBytes} header + {dataBytes} data for {type} [{string.Join(", ", shape)}])";

        // A raw file's length is known: check it before allocating anything the header asks for.
        if (knownLength >= 0 && knownLength != expectedTotal)
        {
            throw new InvalidDataException(
                $"IDX file '{path}': {(knownLength < expectedTotal ? "truncated data" : "trailing bytes")}: {promise}, but {what} {knownLength}.");
        }

        Array data;
        if (knownLength >= 0)
        {
            // The length was checked above: the bytes exist.
            data = Allocate(type, (int)count);
            var bytes = AsBytes(data);
            got = s.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            if (got < bytes.Length)
            {
                throw new InvalidDataException($"IDX file '{path}': truncated data: {promise}, but {what} {headerBytes + got}.");
            }
        }
        else
        {
            // A compressed file's length is unknown until it is read: grow the buffer as the bytes arrive, so a
            // header that claims more than the file holds costs only a small multiple of what it really holds.
            var (raw, arrived) = ReadGrowing(s, dataBytes);
            if (arrived < dataBytes)
            {
                throw new InvalidDataException($"IDX file '{path}': truncated data: {promise}, but {what} {headerBytes + arrived}.");
            }

            if (type == IdxDataType.UByte)
            {
                data = raw;
            }
            else
            {
                data = Allocate(type, (int)count);
                raw.AsSpan().CopyTo(AsBytes(data));
            }
        }

        if (knownLength < 0)
        {
            var trailing = CountRemaining(s);
            if (trailing > 0)
            {
                throw new InvalidDataException($"IDX file '{path}': trailing bytes: {promise}, but {what} {expectedTotal + trailing}.");
            }
        }

        ToMachineOrder(data);
        return new IdxArray(path, type, shape, data);
    }

    /// <summary>The first buffer a read of unknown real length allocates; it doubles each time it fills.</summary>
    private const int FirstReadBytes = 1 << 16;

    /// <summary>
    /// Reads up to <paramref name="length"/> bytes into a buffer that starts at <see cref="FirstReadBytes"/> and doubles
    /// (keeping what arrived) only when full. Returns the buffer (exactly <paramref name="length"/> long when every byte
    /// arrived) and the number of bytes that arrived.
    /// </summary>
    private static (byte[] Buffer, long Arrived) ReadGrowing(Stream s, long length)
    {
        var buffer = new byte[(int)Math.Min(length, FirstReadBytes)];
        var filled = 0;
        while (true)
        {
            var want = buffer.Length - filled;
            var n = s.ReadAtLeast(buffer.AsSpan(filled), want, throwOnEndOfStream: false);
            filled += n;
            if (n < want || filled == length)
            {
                return (buffer, filled);
            }

            Array.Resize(ref buffer, (int)Math.Min(length, (long)buffer.Length * 2));
        }
    }

    private static Array Allocate(IdxDataType type, int count) => type switch
    {
        IdxDataType.UByte => new byte[count],
        IdxDataType.SByte => new sbyte[count],
        IdxDataType.Int16 => new short[count],
        IdxDataType.Int32 => new int[count],
        IdxDataType.Float32 => new float[count],
        _ => new double[count],
    };

    private static Span<byte> AsBytes(Array data) => data switch
    {
        byte[] a => a,
        sbyte[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        short[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        int[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        float[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        double[] a => MemoryMarshal.AsBytes(a.AsSpan()),
        _ => throw new InvalidOperationException("Unknown IDX storage."),
    };

    private static void ToMachineOrder(Array data)
    {
        if (!BitConverter.IsLittleEndian)
        {
            return;
        }

        switch (data)
        {
            case short[] a: BinaryPrimitives.ReverseEndianness(a, a); break;
            case int[] a: BinaryPrimitives.ReverseEndianness(a, a); break;
            case float[] a:
                var fi = MemoryMarshal.Cast<float, int>(a.AsSpan());
                BinaryPrimitives.ReverseEndianness(fi, fi);
                break;
            case double[] a:
                var dl = MemoryMarshal.Cast<double, long>(a.AsSpan());
                BinaryPrimitives.ReverseEndianness(dl, dl);
                break;
        }
    }

    private static long CountRemaining(Stream s)
    {
        var buffer = new byte[1 << 14];
        long total = 0;
        int n;
        while ((n = s.Read(buffer)) > 0)
        {
            total += n;
        }

        return total;
    }
}
