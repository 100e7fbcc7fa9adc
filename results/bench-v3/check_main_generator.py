import importlib.util, sys, time
sys.path.insert(0, "/work/wt-bench-v3")
import synthetic as new
spec = importlib.util.spec_from_file_location("old_synthetic", "/work/main/synthetic.py")
old = importlib.util.module_from_spec(spec); sys.modules["old_synthetic"] = old; spec.loader.exec_module(old)
t=time.time()
splits = old.generate(0, old.DEFAULT_SIZES)
splits["train"] = splits["train"][:2000]
print("generated", time.time()-t, file=sys.stderr)
print("\n".join(new.check(splits)))
# detail for test goal by tier and steps
for split in ("valid","test"):
    g={}
    for r in splits[split]:
        ok,n=new.determined(r)
        g.setdefault((r["tier"],r["style"],n),[]).append(ok)
    for k in sorted(g): print(split,k, f"{100*sum(g[k])/len(g[k]):.0f}% of {len(g[k])}")
print("time", time.time()-t, file=sys.stderr)
