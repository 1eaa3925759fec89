//! The child's side of [`super::child`]: reads a request, runs the phase it
//! names, writes the reply. Only this module knows every phase that runs in a
//! child; the phases and the protocol do not know it.

use super::child::{Reply, Request, Task};
use crate::component::ComponentSource;
use std::path::Path;

/// Reads the request at `path`, does the task, writes the reply. Returns the
/// process exit code.
pub fn serve(path: &Path) -> i32 {
    let request: Request = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: cannot read the child request: {e}", path.display());
            return 2;
        }
    };
    let reply = match run_task(&request) {
        Ok(r) => r,
        Err(e) => Reply::Failed {
            error: format!("{e:#}").replace('\n', " "),
        },
    };
    match serde_json::to_vec(&reply).map(|b| std::fs::write(&request.reply, b)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("{}: cannot write the reply: {e}", request.reply.display());
            2
        }
        Err(e) => {
            eprintln!("cannot encode the reply: {e}");
            2
        }
    }
}

fn run_task(request: &Request) -> anyhow::Result<Reply> {
    let source = ComponentSource::resolve(request.component.as_deref(), request.embedded)?;
    Ok(match &request.task {
        Task::Cold { artifact } => {
            let (reply, built) = super::cold::once(
                &source,
                &request.options,
                request.footprint,
                artifact.as_deref(),
            )?;
            // This process exits next: the kernel unmaps what was built.
            std::mem::forget(built);
            Reply::Cold(reply)
        }
        Task::Memory { artifact, points } => {
            let rt = crate::engine::Runtime::deserialize(
                &read_artifact(artifact)?,
                &source,
                &request.options,
                request.footprint,
            )?;
            Reply::Memory(super::memory::measure_in_child(&rt, points)?)
        }
        Task::Density { artifact, limits } => {
            let (result, growth) =
                super::density::serve(&source, request, &read_artifact(artifact)?, limits)?;
            Reply::Density { result, growth }
        }
        Task::AllCores {
            artifact,
            limits,
            growth,
        } => Reply::AllCores(super::density::serve_all_cores(
            &source,
            request,
            &read_artifact(artifact)?,
            limits,
            growth,
        )?),
        Task::Count { profiles, plan } => {
            Reply::Count(super::count::count_in_child(&source, profiles, plan)?)
        }
    })
}

fn read_artifact(artifact: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(artifact).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", artifact.display()))
}
