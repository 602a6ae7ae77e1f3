//! Answers one request: from the zone for names in the cluster domain, through the forwarding
//! catalog for the rest.

use std::iter;
use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{DNSClass, LowerName, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{Catalog, MessageResponseBuilder};
use parking_lot::RwLock;
use tokio::sync::watch;
use tracing::debug;

use super::zone::{Answer, Zone};

/// The cluster DNS's request handler.
pub(super) struct Handler {
    pub(super) zone: Arc<RwLock<Zone>>,
    /// True once the zone holds the first complete list.
    pub(super) synced: watch::Receiver<bool>,
    /// Forwards names outside the zone; `None` without upstream resolvers.
    pub(super) forward: Option<Catalog>,
}

/// A response's sections.
#[derive(Default)]
struct Sections {
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, response_handle: R) -> ResponseInfo {
        let mut edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            e
        });
        if request.edns.as_ref().is_some_and(|req| req.version() > 0) {
            if let Some(e) = edns.as_mut() {
                e.set_rcode_high(ResponseCode::BADVERS.high());
            }
            let code = ResponseCode::BADVERS;
            return reply(request, response_handle, edns.as_ref(), code, Sections::default()).await;
        }
        if request.metadata.op_code != OpCode::Query {
            let code = ResponseCode::NotImp;
            return reply(request, response_handle, edns.as_ref(), code, Sections::default()).await;
        }
        let Ok(info) = request.request_info() else {
            let code = ResponseCode::FormErr;
            return reply(request, response_handle, edns.as_ref(), code, Sections::default()).await;
        };
        let (name, qtype) = (info.query.name(), info.query.query_type());
        // Read before the zone: the zone is complete before `synced` turns true.
        let synced = *self.synced.borrow();
        let (answer, soa) = {
            let zone = self.zone.read();
            let answer = chase(&zone, zone.lookup(name, qtype), qtype);
            let soa = matches!(answer, Answer::NoData | Answer::NxDomain).then(|| zone.soa());
            (answer, soa)
        };
        if answer == Answer::Outside {
            return match &self.forward {
                Some(catalog) => catalog.handle_request::<R, T>(request, response_handle).await,
                None => {
                    let code = ResponseCode::ServFail;
                    reply(request, response_handle, edns.as_ref(), code, Sections::default()).await
                }
            };
        }
        let refused = !matches!(info.query.query_class(), DNSClass::IN | DNSClass::ANY)
            // Zone transfers are not offered, as CoreDNS without its transfer plugin.
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR);
        let (code, sections) = if refused {
            (ResponseCode::Refused, Sections::default())
        } else if !synced {
            debug!(%name, "cluster DNS not synced yet: SERVFAIL");
            (ResponseCode::ServFail, Sections::default())
        } else {
            match answer {
                Answer::Found { answers, additionals } => (
                    ResponseCode::NoError,
                    Sections {
                        answers,
                        additionals,
                        ..Sections::default()
                    },
                ),
                Answer::NoData => (ResponseCode::NoError, negative(soa)),
                Answer::NxDomain | Answer::Outside => (ResponseCode::NXDomain, negative(soa)),
            }
        };
        reply(request, response_handle, edns.as_ref(), code, sections).await
    }
}

/// Follows a CNAME answer (an ExternalName service) to its target's records when the
/// target is in the cluster domain, as CoreDNS answers it: stub resolvers (glibc) use the
/// addresses in the same response and do not ask again. Targets outside are left to the
/// client.
fn chase(zone: &Zone, mut answer: Answer, qtype: RecordType) -> Answer {
    if qtype == RecordType::CNAME {
        return answer;
    }
    // A few links at most: ExternalName services may point at each other.
    for _ in 0..8 {
        let Answer::Found { answers, additionals } = &mut answer else {
            return answer;
        };
        let Some(target) = answers.last().and_then(|r| match &r.data {
            RData::CNAME(c) => Some(LowerName::new(&c.0)),
            _ => None,
        }) else {
            return answer;
        };
        match zone.lookup(&target, qtype) {
            Answer::Found {
                answers: more,
                additionals: extra,
            } => {
                answers.extend(more);
                additionals.extend(extra);
            }
            _ => return answer,
        }
    }
    answer
}

/// A negative answer's sections: the SOA in the authority section, whose minimum TTL tells
/// resolvers how long to cache the absence.
fn negative(soa: Option<Record>) -> Sections {
    Sections {
        authorities: soa.into_iter().collect(),
        ..Sections::default()
    }
}

async fn reply<R: ResponseHandler>(
    request: &Request,
    mut response_handle: R,
    edns: Option<&Edns>,
    code: ResponseCode,
    sections: Sections,
) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = code;
    // Authoritative for the cluster domain, and a recursive resolver for the rest.
    metadata.authoritative = matches!(code, ResponseCode::NoError | ResponseCode::NXDomain);
    metadata.recursion_available = true;
    let response = MessageResponseBuilder::new(&request.queries, edns).build(
        metadata,
        sections.answers.iter(),
        sections.authorities.iter(),
        iter::empty(),
        sections.additionals.iter(),
    );
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            debug!(error = %e, "cluster DNS: sending a response failed");
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}
