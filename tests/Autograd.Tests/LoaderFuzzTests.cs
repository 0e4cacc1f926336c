using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Serialization;
using static Autograd.Tests.IdxBytes;

namespace Autograd.Tests;

/// <summary>
/// The safetensors and IDX readers against hostile input: headers that claim more than the bytes that exist, duplicated
/// keys, sizes whose product overflows, and seeded mutational fuzzing of small valid files (bit flips, interesting
/// bytes, truncation, insertion, deletion, header length and JSON field edits). Every load either succeeds or throws
/// <see cref="InvalidDataException"/>, allocates at most a small multiple of the input's real size, and a failed load
/// into a module leaves its state bitwise unchanged. AUTOGRAD_FUZZ_ITERATIONS sets the iterations per format.
/// </summary>
public sealed class LoaderFuzzTests : IDisposable
{
    private const int DefaultIterations = 5000;

    private readonly string _dir = Directory.CreateTempSubdirectory("autograd-loader-fuzz-").FullName;
    private readonly ITestOutputHelper _output;

    public LoaderFuzzTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int Iterations =>
        int.TryParse(Environment.GetEnvironmentVariable("AUTOGRAD_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : DefaultIterations;

    /// <summary>The allocation a load may make for an input of <paramref name="realBytes"/> bytes.</summary>
    private static long AllocationBound(long realBytes) => (64 * realBytes) + (1 << 20);

    // ---------------------------------------------------------------- helpers

    /// <summary>A tiny model with a float32 parameter, a float64 parameter and an int64 buffer.</summary>
    private sealed class TinyModel : Module
    {
        public TinyModel()
        {
            RegisterParameter("w32", Tensor.Rand(new Shape(2, 3), 1, DType.Float32));
            RegisterParameter("w64", Tensor.Rand(new Shape(3), 2, DType.Float64));
            RegisterBuffer("steps", Tensor.FromArray(new long[] { 7, -1 }, 2));
        }

        public override Tensor Forward(Tensor input) => input;
    }

    private static byte[] StateBytes(Module m)
    {
        using var ms = new MemoryStream();
        foreach (var (name, t) in m.NamedState())
        {
            ms.Write(Encoding.UTF8.GetBytes(name));
            switch (t.DType)
            {
                case DType.Float32: ms.Write(MemoryMarshal.AsBytes(t.AsSpan<float>())); break;
                case DType.Float64: ms.Write(MemoryMarshal.AsBytes(t.AsSpan<double>())); break;
                default: ms.Write(MemoryMarshal.AsBytes(t.AsSpan<long>())); break;
            }
        }

        return ms.ToArray();
    }

    private static byte[] SafeTensorsFile(string json, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    /// <summary>How many bytes a gzip file really decompresses to (up to where it breaks), capped.</summary>
    private static long DecompressedLength(byte[] gz)
    {
        long total = 0;
        try
        {
            using var s = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress);
            var buffer = new byte[1 << 14];
            int n;
            while ((n = s.Read(buffer)) > 0 && total < (1L << 30))
            {
                total += n;
            }
        }
        catch (InvalidDataException)
        {
            // Corrupt past this point: what arrived is what exists.
        }

        return total;
    }

    private static (Exception? Error, long Allocated) Measure(Action load)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        Exception? error = null;
        try
        {
            load();
        }
        catch (Exception e)
        {
            error = e;
        }

        return (error, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    // ---------------------------------------------------------------- reproductions

    [Fact]
    public void NonSeekableStreamClaimingAHugeTensorFailsTruncatedWithoutAllocatingIt()
    {
        var bytes = SafeTensorsFile("""{"big":{"dtype":"F64","shape":[2147483591],"data_offsets":[0,17179868728]}}""", new byte[64]);
        var (error, allocated) = Measure(() => SafeTensors.Read(new ForwardOnlyStream(bytes)));
        var e = Assert.IsType<InvalidDataException>(error);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("'big'", e.Message);
        Assert.Contains("[0, 17179868728]", e.Message);
        Assert.True(allocated < AllocationBound(bytes.Length), $"allocated {allocated} bytes for a {bytes.Length}-byte stream");
    }

    [Fact]
    public void NonSeekableStreamClaimingAHugeHeaderFailsWithoutAllocatingIt()
    {
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 99_999_999);
        bytes[8] = (byte)'{';
        var (error, allocated) = Measure(() => SafeTensors.Read(new ForwardOnlyStream(bytes)));
        var e = Assert.IsType<InvalidDataException>(error);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("99999999", e.Message);
        Assert.True(allocated < AllocationBound(bytes.Length), $"allocated {allocated} bytes for a {bytes.Length}-byte stream");
    }

    [Fact]
    public void SeekableStreamClaimingMoreThanItHoldsFailsBeforeAllocating()
    {
        var bytes = SafeTensorsFile("""{"big":{"dtype":"F64","shape":[2147483591],"data_offsets":[0,17179868728]}}""", new byte[64]);
        var (error, allocated) = Measure(() => SafeTensors.Read(new MemoryStream(bytes)));
        var e = Assert.IsType<InvalidDataException>(error);
        Assert.Contains("truncated: tensor 'big'", e.Message);
        Assert.True(allocated < AllocationBound(bytes.Length));
    }

    public static TheoryData<string, string> DuplicateKeys() => new()
    {
        { """{"a":{"dtype":"F64","dtype":"I64","shape":[1],"data_offsets":[0,8]}}""", "tensor 'a': the key \"dtype\" appears twice" },
        { """{"a":{"dtype":"F64","shape":[1],"shape":[1],"data_offsets":[0,8]}}""", "tensor 'a': the key \"shape\" appears twice" },
        { """{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8],"data_offsets":[0,8]}}""", "tensor 'a': the key \"data_offsets\" appears twice" },
        { """{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}""", "the name 'a' appears twice" },
        { """{"__metadata__":{"k":"v","k":"w"},"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}""", "metadata 'k' appears twice" },
        { """{"a":{"dtype":"F64","d\u0074ype":"I64","shape":[1],"data_offsets":[0,8]}}""", "tensor 'a': the key \"dtype\" appears twice" },
    };

    [Theory]
    [MemberData(nameof(DuplicateKeys))]
    public void DuplicateKeysAreRejectedAtEveryLevel(string json, string expected)
    {
        var bytes = SafeTensorsFile(json, BitConverter.GetBytes(1.5));
        foreach (var stream in new Stream[] { new MemoryStream(bytes), new ForwardOnlyStream(bytes) })
        {
            var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(stream));
            Assert.Contains(expected, e.Message);
            Assert.Contains("safetensors '<stream>'", e.Message);
        }
    }

    [Fact]
    public void TinyGzippedIdxClaimingGigabytesFailsTruncatedWithoutAllocatingThem()
    {
        var gz = Gzip(Idx(0x08, [0x7FFF0000 / 4, 2, 2], []), CompressionLevel.Fastest);
        var path = Path.Combine(_dir, "huge.gz");
        File.WriteAllBytes(path, gz);
        var (error, allocated) = Measure(() => IdxFile.Read(path));
        var e = Assert.IsType<InvalidDataException>(error);
        Assert.Contains("truncated data", e.Message);
        Assert.Contains(path, e.Message);
        Assert.True(gz.Length < 64);
        Assert.True(allocated < AllocationBound(gz.Length), $"allocated {allocated} bytes for a {gz.Length}-byte file");
    }

    [Fact]
    public void RawIdxClaimingMoreThanTheFileFailsBeforeAllocating()
    {
        var raw = Idx(0x0E, [0x00FFFFFF], new byte[8]);
        var path = Path.Combine(_dir, "huge.idx");
        File.WriteAllBytes(path, raw);
        var (error, allocated) = Measure(() => IdxFile.Read(path));
        var e = Assert.IsType<InvalidDataException>(error);
        Assert.Contains("truncated data", e.Message);
        Assert.True(allocated < AllocationBound(raw.Length));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxWithAZeroSizeHasTheHeadersShapeWhateverTheOtherSizes(bool gzip)
    {
        foreach (var dims in new[] { new[] { 0, 100000, 100000 }, [100000, 100000, 0], [2147483647, 0, 2147483647] })
        {
            var raw = Idx(0x08, dims, []);
            var path = Path.Combine(_dir, gzip ? "zero.gz" : "zero.idx");
            File.WriteAllBytes(path, gzip ? Gzip(raw, CompressionLevel.Fastest) : raw);
            var idx = IdxFile.Read(path);
            Assert.Equal(dims, idx.Shape);
            Assert.Equal(0, idx.ElementCount);
            Assert.Equal(dims, idx.ToTensor().Shape.ToArray());
            Assert.Equal(dims, IdxFile.ReadImages(path, flatten: false).Shape.ToArray());
        }
    }

    [Fact]
    public void FlatteningZeroImagesOfMoreThanAnIntPixelsFailsClearly()
    {
        var path = Path.Combine(_dir, "zero.idx");
        File.WriteAllBytes(path, Idx(0x08, [0, 100000, 100000], []));
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.ReadImages(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("100000 × 100000", e.Message);
        Assert.Contains("10000000000", e.Message);

        File.WriteAllBytes(path, Idx(0x08, [0, 1000, 1000], []));
        Assert.Equal(new[] { 0, 1000000 }, IdxFile.ReadImages(path).Shape.ToArray());
    }

    [Fact]
    public void IdxSizesWhoseProductOverflowsAreRejected()
    {
        var path = Path.Combine(_dir, "overflow.idx");
        File.WriteAllBytes(path, Idx(0x08, [65536, 65536, 2], [1, 2, 3]));
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains("[65536, 65536, 2]", e.Message);
        Assert.Contains("more data than an array can hold", e.Message);
    }

    // ---------------------------------------------------------------- fuzzing

    private static readonly byte[] InterestingBytes = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0x20, (byte)'"', (byte)'{', (byte)'}', (byte)'9', (byte)'-', (byte)','];

    private static readonly string[] InterestingNumbers =
        ["0", "-1", "1", "2147483591", "2147483647", "2147483648", "4294967296", "9223372036854775807", "9223372036854775808", "17179868728", "1e30", "-0", "99999999999999999999", "3.5"];

    private static readonly string[] DTypeCodes = ["F64", "F32", "I64", "F16", "BF16", "I32", "U8", "BOOL", "X", ""];

    private static readonly string[] DuplicateFields =
        ["\"dtype\":\"I64\",", "\"dtype\":\"F64\",", "\"shape\":[2147483591],", "\"shape\":[],", "\"data_offsets\":[0,17179868728],", "\"data_offsets\":[0,8],", "\"extra\":1,"];

    private static byte[] MutateBytes(Random rng, byte[] input, bool headerLengthEdits)
    {
        var b = new List<byte>(input);
        var kind = rng.Next(headerLengthEdits ? 6 : 5);
        switch (kind)
        {
            case 0 when b.Count > 0:
                b[rng.Next(b.Count)] ^= (byte)(1 << rng.Next(8));
                break;
            case 1 when b.Count > 0:
                b[rng.Next(b.Count)] = InterestingBytes[rng.Next(InterestingBytes.Length)];
                break;
            case 2:
                var cut = rng.Next(b.Count + 1);
                b.RemoveRange(cut, b.Count - cut);
                break;
            case 3:
                var at = rng.Next(b.Count + 1);
                var insert = new byte[rng.Next(1, 17)];
                rng.NextBytes(insert);
                b.InsertRange(at, insert);
                break;
            case 4 when b.Count > 0:
                var from = rng.Next(b.Count);
                b.RemoveRange(from, Math.Min(b.Count - from, rng.Next(1, 17)));
                break;
            case 5 when b.Count >= 8:
                ulong[] lengths = [0, 1, 7, 99_999_999, 100_000_001, int.MaxValue, ulong.MaxValue, (ulong)long.MaxValue + 1];
                var current = BinaryPrimitives.ReadUInt64LittleEndian(CollectionsMarshal.AsSpan(b)[..8]);
                var value = rng.Next(2) == 0 ? lengths[rng.Next(lengths.Length)] : current + (ulong)(rng.Next(-16, 17));
                BinaryPrimitives.WriteUInt64LittleEndian(CollectionsMarshal.AsSpan(b)[..8], value);
                break;
        }

        return [.. b];
    }

    /// <summary>Edits the JSON header of a well-formed safetensors file and rewrites the length prefix to match.</summary>
    private static byte[] MutateJson(Random rng, byte[] file)
    {
        var n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        var json = Encoding.UTF8.GetString(file, 8, n);
        var data = file[(8 + n)..];
        switch (rng.Next(6))
        {
            case 0:
                {
                    var numbers = Regex.Matches(json, "-?[0-9]+");
                    var m = numbers[rng.Next(numbers.Count)];
                    json = json[..m.Index] + InterestingNumbers[rng.Next(InterestingNumbers.Length)] + json[(m.Index + m.Length)..];
                    break;
                }

            case 1:
                {
                    var codes = Regex.Matches(json, "\"dtype\":\"([A-Z0-9_]*)\"");
                    var g = codes[rng.Next(codes.Count)].Groups[1];
                    json = json[..g.Index] + DTypeCodes[rng.Next(DTypeCodes.Length)] + json[(g.Index + g.Length)..];
                    break;
                }

            case 2:
                {
                    var entries = Regex.Matches(json, "\\{\"dtype\"");
                    var m = entries[rng.Next(entries.Count)];
                    json = json[..(m.Index + 1)] + DuplicateFields[rng.Next(DuplicateFields.Length)] + json[(m.Index + 1)..];
                    break;
                }

            case 3:
                {
                    // The same tensor name twice.
                    var entry = Regex.Matches(json, "\"[a-z0-9]+\":\\{\"dtype\"[^}]*\\}");
                    var m = entry[rng.Next(entry.Count)];
                    json = json[..^1] + "," + m.Value + "}";
                    break;
                }

            case 4:
                {
                    // Negative or shifted offsets.
                    var offsets = Regex.Matches(json, "\"data_offsets\":\\[([0-9]+),([0-9]+)\\]");
                    var m = offsets[rng.Next(offsets.Count)];
                    var shift = rng.Next(-9, 10);
                    var begin = long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) + shift;
                    var end = long.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) + (rng.Next(2) == 0 ? shift : 0);
                    json = json[..m.Index] + $"\"data_offsets\":[{begin},{end}]" + json[(m.Index + m.Length)..];
                    break;
                }

            default:
                {
                    // A huge shape with offsets to match, so only the real length can refute it.
                    var entries = Regex.Matches(json, "\"shape\":\\[[0-9,]*\\]");
                    var m = entries[rng.Next(entries.Count)];
                    json = json[..m.Index] + "\"shape\":[2147483591]" + json[(m.Index + m.Length)..];
                    break;
                }
        }

        var header = Encoding.UTF8.GetBytes(json);
        var padded = rng.Next(2) == 0 ? header : [.. header, .. Enumerable.Repeat((byte)' ', (8 - (header.Length % 8)) % 8)];
        return SafeTensorsFile(Encoding.UTF8.GetString(padded), data);
    }

    [Fact]
    public void SafeTensorsFuzz()
    {
        var model = new TinyModel();
        byte[] seed;
        using (var ms = new MemoryStream())
        {
            model.SaveSafeTensors(ms, new Dictionary<string, string> { ["format"] = "pt" });
            seed = ms.ToArray();
        }

        // Loading the seed itself works in every way.
        Assert.Equal(3, SafeTensors.Read(new ForwardOnlyStream(seed)).Tensors.Count);

        var iterations = Iterations;
        var rng = new Random(20261130);
        var path = Path.Combine(_dir, "fuzz.safetensors");
        var clock = Stopwatch.StartNew();
        int accepted = 0;
        double worstRatio = 0;
        long peak = 0;
        for (var i = 0; i < iterations; i++)
        {
            var input = rng.Next(3) == 0 ? MutateJson(rng, seed) : seed;
            for (var m = rng.Next(input == seed ? 1 : 0, 3); m > 0; m--)
            {
                input = MutateBytes(rng, input, headerLengthEdits: true);
            }

            var mode = i % 4;
            var before = mode is 1 or 3 ? StateBytes(model) : null;
            if (mode == 2)
            {
                File.WriteAllBytes(path, input);
            }

            var (error, allocated) = Measure(() =>
            {
                switch (mode)
                {
                    case 0: SafeTensors.Read(new ForwardOnlyStream(input)); break;
                    case 1: model.LoadSafeTensors(new ForwardOnlyStream(input)); break;
                    case 2: SafeTensors.Read(path); break;
                    default: model.LoadSafeTensors(new MemoryStream(input)); break;
                }
            });

            var context = $"iteration {i}, mode {mode}, input {Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 400)))}";
            if (error is not null and not InvalidDataException)
            {
                Assert.Fail($"{context}: threw {error}");
            }

            Assert.True(allocated <= AllocationBound(input.Length), $"{context}: allocated {allocated} bytes for {input.Length}");
            worstRatio = Math.Max(worstRatio, (double)allocated / AllocationBound(input.Length));
            peak = Math.Max(peak, allocated);
            if (error is null)
            {
                accepted++;
                if (before is not null)
                {
                    model = new TinyModel();
                }
            }
            else if (before is not null)
            {
                Assert.True(before.AsSpan().SequenceEqual(StateBytes(model)), $"{context}: a failed load changed the module");
            }
        }

        _output.WriteLine($"safetensors: {iterations} iterations in {clock.Elapsed.TotalSeconds:F2} s, {accepted} accepted, peak allocation {peak} bytes, at most {worstRatio:P1} of the bound 64 × length + 1 MiB");
    }

    [Fact]
    public void IdxFuzz()
    {
        byte[][] seeds =
        [
            Idx(0x08, [3, 4, 5], [.. Enumerable.Range(0, 60).Select(v => (byte)(v * 4))]),
            Idx(0x08, [7], [0, 1, 2, 3, 4, 5, 9]),
            Idx(0x0E, [2, 3], [.. Enumerable.Range(0, 48).Select(v => (byte)v)]),
            Idx(0x0B, [4], [0, 1, 0xFF, 0xFE, 0x12, 0x34, 0x80, 0]),
            Idx(0x0D, [1, 2], [0x3F, 0xC0, 0, 0, 0xBE, 0x80, 0, 0]),
        ];
        int[] interestingDims = [0, 1, -1, 100000, int.MaxValue, int.MinValue, 0x7FFF0000, 65536, 60];

        var iterations = Iterations;
        var rng = new Random(1130);
        var path = Path.Combine(_dir, "fuzz.idx");
        var clock = Stopwatch.StartNew();
        int accepted = 0;
        double worstRatio = 0;
        long peak = 0;
        for (var i = 0; i < iterations; i++)
        {
            var raw = seeds[rng.Next(seeds.Length)];
            if (rng.Next(3) == 0)
            {
                // Header edits: a size, the rank or the type code.
                raw = (byte[])raw.Clone();
                var ndim = raw[3];
                switch (rng.Next(3))
                {
                    case 0: BinaryPrimitives.WriteInt32BigEndian(raw.AsSpan(4 + (4 * rng.Next(ndim))), interestingDims[rng.Next(interestingDims.Length)]); break;
                    case 1: raw[3] = (byte)rng.Next(0, 5); break;
                    default: raw[2] = InterestingBytes[rng.Next(InterestingBytes.Length)]; break;
                }
            }

            for (var m = rng.Next(0, 3); m > 0; m--)
            {
                raw = MutateBytes(rng, raw, headerLengthEdits: false);
            }

            var gzip = rng.Next(2) == 0;
            var input = gzip ? Gzip(raw, CompressionLevel.Fastest) : raw;
            if (gzip && rng.Next(3) == 0)
            {
                input = MutateBytes(rng, input, headerLengthEdits: false);
            }

            File.WriteAllBytes(path, input);
            var real = Math.Max(input.Length, gzip ? DecompressedLength(input) : 0);
            var mode = i % 3;
            var (error, allocated) = Measure(() =>
            {
                switch (mode)
                {
                    case 0: IdxFile.Read(path).ToTensor(); break;
                    case 1: IdxFile.ReadImages(path); break;
                    default: IdxFile.ReadLabels(path); break;
                }
            });

            var context = $"iteration {i}, mode {mode}, gzip {gzip}, input {Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 200)))}";
            if (error is not null and not InvalidDataException)
            {
                Assert.Fail($"{context}: threw {error}");
            }

            Assert.True(allocated <= AllocationBound(real), $"{context}: allocated {allocated} bytes for {real}");
            worstRatio = Math.Max(worstRatio, (double)allocated / AllocationBound(real));
            peak = Math.Max(peak, allocated);
            accepted += error is null ? 1 : 0;
        }

        _output.WriteLine($"IDX: {iterations} iterations in {clock.Elapsed.TotalSeconds:F2} s, {accepted} accepted, peak allocation {peak} bytes, at most {worstRatio:P1} of the bound 64 × length + 1 MiB");
    }
}
