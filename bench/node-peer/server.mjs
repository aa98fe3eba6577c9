// The Node peer of bench/overhead.py: sofa-api turning GET requests into GraphQL over
// the same precomputed upstream the proxy reads.
//   node server.mjs PORT UPSTREAM_URL fetch    a resolver that POSTs the query with fetch
//   node server.mjs PORT UPSTREAM_URL remote   the standard way: a remote schema
//                                              (@graphql-tools/wrap + executor-http)
import { createServer } from "node:http";
import { makeExecutableSchema } from "@graphql-tools/schema";
import { wrapSchema } from "@graphql-tools/wrap";
import { buildHTTPExecutor } from "@graphql-tools/executor-http";
import { useSofa } from "sofa-api";

const [port, upstream, mode] = process.argv.slice(2);
const endpoint = `${upstream}/api/public/api/v1/learning-plan-progress/graphql`;

// The part of the Learning Plan Progress schema that /users reads.
const typeDefs = `
  enum SubscriptionStatus { SUBSCRIBED UNSUBSCRIBED COMPLETED }
  enum LearningPlanProgressOrderBy { EMAIL LAST_ACTIVE STEPS_COMPLETED SUBSCRIBED_AT }
  enum SortOrder { ASC DESC }
  input LearningPlanProgressFilter { learningPlanId: ID! }
  input LearningPlanProgressInput {
    filter: LearningPlanProgressFilter!
    orderBy: LearningPlanProgressOrderBy
    order: SortOrder
    first: Int
    after: String
  }
  type PageInfo { hasNextPage: Boolean! endCursor: String }
  type LearnerProgress {
    userId: ID!
    userEmail: String
    userFirstName: String
    userLastName: String
    subscriptionStatus: SubscriptionStatus
    subscribedAt: String
    unsubscribedAt: String
    completedAt: String
    stepsTotal: Int
    stepsCompleted: Int
    lastActiveAt: String
  }
  type LearnerProgressEdge { cursor: String! node: LearnerProgress! }
  type LearnerProgressConnection {
    totalCount: Int!
    pageInfo: PageInfo!
    edges: [LearnerProgressEdge!]!
  }
  type Query { learningPlanProgress(input: LearningPlanProgressInput!): LearnerProgressConnection! }
`;

const query = `query Users($input: LearningPlanProgressInput!) {
  learningPlanProgress(input: $input) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { userId userEmail userFirstName userLastName subscriptionStatus
      subscribedAt unsubscribedAt completedAt stepsTotal stepsCompleted lastActiveAt } }
  }
}`;

const headers = { "content-type": "application/json", authorization: "Token bench-key" };
let schema;
if (mode === "fetch") {
  schema = makeExecutableSchema({
    typeDefs,
    resolvers: {
      Query: {
        async learningPlanProgress(_, { input }) {
          const answer = await fetch(endpoint, {
            method: "POST", headers, body: JSON.stringify({ query, variables: { input } }),
          });
          return (await answer.json()).data.learningPlanProgress;
        },
      },
    },
  });
} else {
  schema = wrapSchema({
    schema: makeExecutableSchema({ typeDefs }),
    executor: buildHTTPExecutor({ endpoint, headers }),
  });
}

createServer(useSofa({ basePath: "/api", schema })).listen(Number(port), "127.0.0.1");
