using System.Runtime.CompilerServices;

namespace Autograd.Nn.Serialization;

/// <summary>What <see cref="SafeTensorsModuleExtensions.LoadSafeTensors(Module, string, bool, string, string, int)"/> did not match; both lists are empty after a strict load.</summary>
public sealed class SafeTensorsLoadResult
{
    internal SafeTensorsLoadResult(IReadOnlyList<string> missingKeys, IReadOnlyList<string> unexpectedKeys)
    {
        MissingKeys = missingKeys;
        UnexpectedKeys = unexpectedKeys;
    }

    /// <summary>Parameters and buffers of the module that the file does not hold (left unchanged), in state order.</summary>
    public IReadOnlyList<string> MissingKeys { get; }

    /// <summary>Tensors of the file that name no parameter or buffer of the module (ignored), in file order.</summary>
    public IReadOnlyList<string> UnexpectedKeys { get; }
}

/// <summary>
/// Saves a module's parameters and buffers to a safetensors file and loads them back, named as by
/// <see cref="Module.NamedState"/> (<c>0.weight</c>, <c>0.bias</c>, <c>1.running_mean</c>, …) — the names of PyTorch's
/// <c>state_dict()</c> for the same architecture, so files move between Autograd and PyTorch unchanged.
/// </summary>
public static class SafeTensorsModuleExtensions
{
    extension(Module module)
    {
        /// <summary>
        /// Writes every parameter and buffer (<see cref="Module.NamedState"/>) to <paramref name="path"/> in the safetensors
        /// format, atomically (see <see cref="SafeTensors.Save(string, IEnumerable{KeyValuePair{string, Tensor}}, IReadOnlyDictionary{string, string}?)"/>).
        /// </summary>
        /// <exception cref="IOException">The file cannot be written.</exception>
        public void SaveSafeTensors(string path, IReadOnlyDictionary<string, string>? metadata = null)
        {
            ArgumentNullException.ThrowIfNull(module);
            SafeTensors.Save(path, module.NamedState(), metadata);
        }

        /// <summary>Writes every parameter and buffer to <paramref name="stream"/> in the safetensors format.</summary>
        public void SaveSafeTensors(Stream stream, IReadOnlyDictionary<string, string>? metadata = null)
        {
            ArgumentNullException.ThrowIfNull(module);
            SafeTensors.Save(stream, module.NamedState(), metadata);
        }

        /// <summary>
        /// Loads the parameters and buffers from the safetensors file at <paramref name="path"/>. Everything is checked before
        /// anything is copied, so on any error the module is unchanged: the file must be well-formed, every tensor
        /// whose name matches a parameter must have its shape and dtype (F16 and BF16 files load into float32
        /// parameters), and, when <paramref name="strict"/>, the file's names must be exactly the parameters' names.
        /// The values are then copied, with recording off, into the existing parameter tensors, so an optimiser that
        /// holds them sees the new values.
        /// </summary>
        /// <param name="path">The file.</param>
        /// <param name="strict">
        /// True (the default): a parameter missing from the file or a tensor in the file that names no parameter is an
        /// error. False: both are tolerated (as in PyTorch's <c>load_state_dict(strict=False)</c>) and listed in the
        /// result; the missing parameters keep their values.
        /// </param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write in each loaded tensor's <see cref="Tensor.Version"/>.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>The names that did not match (both empty after a strict load).</returns>
        /// <exception cref="InvalidDataException">
        /// The file is malformed, or does not fit the module: the message names the file and lists every missing or
        /// unexpected name and every tensor whose shape or dtype differs, with expected and actual values.
        /// </exception>
        /// <exception cref="IOException">The file cannot be read.</exception>
        public SafeTensorsLoadResult LoadSafeTensors(string path, bool strict = true, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
        {
            ArgumentNullException.ThrowIfNull(module);
            ArgumentException.ThrowIfNullOrEmpty(path);
            return Apply(module, SafeTensors.Read(path), path, strict, new WriteSite(callerMember, callerFile, callerLine));
        }

        /// <summary>Loads the parameters from a safetensors file in <paramref name="stream"/>; see <see cref="LoadSafeTensors(Module, string, bool, string, string, int)"/>.</summary>
        /// <param name="stream">The safetensors data.</param>
        /// <param name="strict">Whether the names must match exactly (see the path overload).</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write in each loaded tensor's <see cref="Tensor.Version"/>.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>The names that did not match (both empty after a strict load).</returns>
        /// <exception cref="InvalidDataException">The data is malformed or does not fit the module.</exception>
        public SafeTensorsLoadResult LoadSafeTensors(Stream stream, bool strict = true, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
        {
            ArgumentNullException.ThrowIfNull(module);
            ArgumentNullException.ThrowIfNull(stream);
            return Apply(module, SafeTensors.Read(stream), "<stream>", strict, new WriteSite(callerMember, callerFile, callerLine));
        }
    }

    private static SafeTensorsLoadResult Apply(Module module, SafeTensorsContent file, string source, bool strict, WriteSite site)
    {
        var parameters = module.NamedState().ToList();
        var names = parameters.Select(p => p.Key).ToHashSet(StringComparer.Ordinal);
        var missing = parameters.Where(p => !file.Tensors.ContainsKey(p.Key)).Select(p => p.Key).ToList();
        var unexpected = file.Tensors.Keys.Where(k => !names.Contains(k)).ToList();

        var problems = new List<string>();
        if (strict && missing.Count > 0)
        {
            problems.Add($"missing from the file: {string.Join(", ", missing)}");
        }

        if (strict && unexpected.Count > 0)
        {
            problems.Add($"not parameters or buffers of the module: {string.Join(", ", unexpected)}");
        }

        foreach (var (name, p) in parameters)
        {
            if (!file.Tensors.TryGetValue(name, out var t))
            {
                continue;
            }

            if (t.Shape != p.Shape)
            {
                problems.Add($"'{name}': shape {t.Shape} in the file, {p.Shape} in the module");
            }

            if (t.DType != p.DType)
            {
                problems.Add($"'{name}': dtype {file.StoredDTypes[name]} ({t.DType.Name()}) in the file, {SafeTensors.DTypeCode(p.DType)} ({p.DType.Name()}) in the module");
            }
        }

        if (problems.Count > 0)
        {
            throw new InvalidDataException(
                $"LoadSafeTensors: safetensors '{source}' does not fit {module.GetType().Name} (nothing was loaded):\n  " + string.Join("\n  ", problems));
        }

        using (GradMode.NoGrad())
        {
            foreach (var (name, p) in parameters)
            {
                if (file.Tensors.TryGetValue(name, out var t))
                {
                    p.MarkWritten("Module.LoadSafeTensors", site.Member, site.File, site.Line);
                    Array.Copy(t.Storage, t.Offset, p.Storage, p.Offset, p.ElementCount);
                }
            }
        }

        return new SafeTensorsLoadResult(missing, unexpected);
    }
}

/// <summary>The caller of a public write, passed on to <see cref="Tensor.Version"/>'s record of the write.</summary>
internal readonly record struct WriteSite(string Member, string File, int Line);
